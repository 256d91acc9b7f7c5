"""Accepting messages from applications: validate, route, store media, commit, wake.

The order matters for durability: media bytes are written (fsynced) to the content-
addressed store first, then the message and its batches are committed in one
transaction, and only then is the client answered and the dispatcher woken.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from gateway.api.schemas import MediaInput, SubmitRequest
from gateway.errors import Backpressure, NotFoundError, PayloadTooLarge, ValidationError
from gateway.media_fetch import FetchPolicy, fetch_media
from gateway.media_store import MediaStore
from gateway.routing import Router
from gateway.store import MessageRecord, NewMessage, PartRef, SqliteStore

#: Bytes the SOAP envelope and MIME framing add around the content (measured: ~1.2 KB).
ENVELOPE_OVERHEAD = 2048

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"#!AMR", "audio/amr"),
)


@dataclass(frozen=True, slots=True)
class RouteLimits:
    max_message_bytes: int
    max_recipients_per_submit: int
    default_validity_seconds: float
    transfer_encoding: str = "binary"


def sniff_type(data: bytes, declared: str | None) -> str | None:
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    return declared


class QueueGauge:
    """Batches waiting or in flight per route, kept in memory for back-pressure checks."""

    def __init__(self) -> None:
        self.depth: dict[str, int] = {}

    @property
    def total(self) -> int:
        return sum(self.depth.values())

    def add(self, route: str, count: int) -> None:
        self.depth[route] = self.depth.get(route, 0) + count

    def done(self, route: str, count: int = 1) -> None:
        self.depth[route] = max(0, self.depth.get(route, 0) - count)


class SubmissionService:
    def __init__(
        self,
        *,
        store: SqliteStore,
        media_store: MediaStore,
        router: Router,
        limits: dict[str, RouteLimits],
        queue: QueueGauge,
        max_queue_depth: int,
        wake: Callable[[str], None],
        on_accepted: Callable[[MessageRecord], None],
        fetch_policy: FetchPolicy,
        http: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.media_store = media_store
        self.router = router
        self.limits = limits
        self.queue = queue
        self.max_queue_depth = max_queue_depth
        self.wake = wake
        self.on_accepted = on_accepted
        self.fetch_policy = fetch_policy
        self.http = http
        self.clock = clock

    def check_backpressure(self) -> None:
        if self.queue.total >= self.max_queue_depth:
            raise Backpressure(
                f"the queue holds {self.queue.total} submissions, its limit is {self.max_queue_depth}",
                retry_after=5,
            )

    async def _resolve_media(self, item: MediaInput) -> tuple[str, bytes]:
        field = f"media[{item.index}]"
        if item.url is not None:
            if self.http is None:
                raise ValidationError("media URLs are not enabled", field=field)
            declared, data = await fetch_media(self.http, item.url, self.fetch_policy, field)
        else:
            declared, data = item.content_type, item.data or b""
        if not data:
            raise ValidationError(f"{field} is empty", field=field, code="empty_media")
        content_type = sniff_type(data, declared)
        if not content_type:
            raise ValidationError(f"{field} needs a content_type", field=field)
        return content_type, data

    async def submit(
        self,
        api_key: str,
        request: SubmitRequest,
        *,
        idempotency_key: str | None,
        request_hash: str | None,
    ) -> tuple[MessageRecord, bool]:
        self.check_backpressure()
        routes = tuple(self.router.route_for(number, request.route) for number in request.to)
        # ---- opt-out check (issue 5) -- begin -------------------------------------------
        # ``optout`` (gateway.callbacks.optout.OptOut) is attached by Callbacks.start();
        # a recipient that sent STOP to this sender is refused with 403.
        optout = getattr(self, "optout", None)
        if optout is not None:
            blocked = await optout.check(request.to, routes, request.sender)
            if blocked:
                from gateway.errors import ForbiddenError  # noqa: PLC0415 - self-contained block

                raise ForbiddenError(
                    f"{len(blocked)} recipient(s) opted out of messages from this sender",
                    field="to",
                    code="recipient_opted_out",
                )
        # ---- opt-out check (issue 5) -- end ---------------------------------------------
        media = [await self._resolve_media(item) for item in request.media]
        size = (
            ENVELOPE_OVERHEAD + len((request.text or "").encode()) + sum(len(d) for _, d in media)
        )
        for route in set(routes):
            limit = self.limits[route]
            wire = size if limit.transfer_encoding == "binary" else size * 4 // 3
            if wire > limit.max_message_bytes:
                raise PayloadTooLarge(
                    f"the message would be about {wire} bytes on the wire; route {route} "
                    f"accepts at most {limit.max_message_bytes}",
                    field="media",
                )
        parts = []
        for index, (content_type, data) in enumerate(media):
            digest = await self.media_store.put(data)
            parts.append(
                PartRef(
                    content_type=content_type,
                    sha256=digest,
                    size=len(data),
                    content_id=f"media{index}",
                )
            )
        now = self.clock()
        first = routes[0]
        send_at = max(now, request.send_at or now)
        expires_at = request.expires_at or (send_at + self.limits[first].default_validity_seconds)
        if expires_at <= now or expires_at <= send_at:
            raise ValidationError(
                "expires_at must be in the future and after send_at", field="expires_at"
            )
        new = NewMessage(
            id="msg_" + uuid.uuid4().hex,
            api_key=api_key,
            route=first,
            recipients=request.to,
            recipient_routes=routes,
            sender=request.sender,
            subject=request.subject,
            text=request.text,
            parts=tuple(parts),
            batch_sizes={r: self.limits[r].max_recipients_per_submit for r in set(routes)},
            created_at=now,
            send_at=send_at,
            expires_at=expires_at,
            priority=request.priority,
            delivery_report=request.delivery_report,
            read_report=request.read_report,
            callback_url=request.callback_url,
            client_ref=request.client_ref,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            original_bytes=size,
            adapted_bytes=size,
        )
        record, created = await self.store.create_message(new)
        if created:
            for route in set(routes):
                batch_count = -(
                    -routes.count(route) // max(1, self.limits[route].max_recipients_per_submit)
                )
                self.queue.add(route, batch_count)
                self.wake(route)
            self.on_accepted(record)
        return record, created

    async def get(self, api_key: str, message_id: str) -> MessageRecord:
        record = await self.store.get_message(message_id)
        if record is None or record.api_key != api_key:
            raise NotFoundError(f"no message {message_id}")
        return record


def request_fingerprint(body: object, media_digests: list[str]) -> str:
    """Hash of a request for Idempotency-Key conflict detection."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(canonical.encode())
    for item in media_digests:
        digest.update(item.encode())
    return digest.hexdigest()
