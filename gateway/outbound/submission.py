"""Accepting messages from applications: validate, route, store media, commit, wake.

The order matters for durability: media bytes are written (fsynced) to the content-
addressed store first, then the message and its batches are committed in one
transaction, and only then is the client answered and the dispatcher woken.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import aiohttp
import structlog

from gateway.errors import (
    Backpressure,
    ForbiddenError,
    IdempotencyConflict,
    NotFoundError,
    PayloadTooLarge,
    UnsupportedMedia,
    ValidationError,
)
from gateway.media import AdaptResult, MediaPart, MediaTooLargeError, adapt_parts
from gateway.media import MediaError as PipelineMediaError
from gateway.media.fetch import FetchPolicy, address_allowed, fetch_media
from gateway.media.offload import run_sized
from gateway.media.store import MediaStorage
from gateway.outbound.pools import SenderPool, assign_senders
from gateway.outbound.queue import QueueGauge
from gateway.outbound.request import MediaInput, SubmitRequest
from gateway.outbound.routing import Router
from gateway.store import MessageRecord, NewMessage, PartRef, Store
from gateway.store.records import RecipientsRefused, plan_batches
from protocol.limits import RECIPIENT_ENVELOPE_BYTES, SUBMIT_ENVELOPE_BYTES

if TYPE_CHECKING:
    from gateway.outbound.suppression import OptOut

log = structlog.get_logger("gateway.outbound.submission")

#: Distinct (media, route limits) adaptations remembered; each holds the adapted bytes.
ADAPT_CACHE_ENTRIES = 32

#: Bytes the SOAP envelope and MIME framing add around the content, before recipients,
#: and what each more recipient adds (protocol's figures; the config's floor uses them too).
ENVELOPE_OVERHEAD = SUBMIT_ENVELOPE_BYTES
RECIPIENT_OVERHEAD = RECIPIENT_ENVELOPE_BYTES
#: "Any size": the budget of media that goes by link rather than inside an MM7 body.
NO_BUDGET = 1 << 40
#: The largest image a link fallback serves: about a phone screen (1920 x 1080) and 1 MiB.
LINK_RENDITION_PIXELS = 1920 * 1080
LINK_RENDITION_BYTES = 1 << 20


def envelope_overhead(recipients_per_submit: int, subject: str | None) -> int:
    """Budget kept for the envelope of a SubmitReq (XML escaping may double a subject)."""
    subject_bytes = 2 * len(subject.encode()) if subject else 0
    return (
        ENVELOPE_OVERHEAD + RECIPIENT_OVERHEAD * max(0, recipients_per_submit - 1) + subject_bytes
    )


def check_callback_url(url: str, *, allow_private: bool) -> None:
    """Refuse a client-given webhook URL aimed at our own network (server-side requests).

    IP literals and ``localhost`` are checked here with the media-fetch address policy; a
    DNS name is not resolved at submission (its answer may change before delivery).
    """
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        allowed = allow_private
    else:
        try:
            allowed = address_allowed(ipaddress.ip_address(host), allow_private)
        except ValueError:
            return  # a name, not an address
    if not allowed:
        raise ValidationError(
            "callback_url points at a private, loopback or link-local address",
            field="callback_url",
            code="callback_url_forbidden",
        )


def _clean_for_link(media: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Media as a link serves it: sniffed (anything we would not carry is refused, as on
    the MMS path), EXIF orientation applied and metadata (GPS...) stripped, and each image
    a handset-sized rendition (``LINK_RENDITION_PIXELS``, ``LINK_RENDITION_BYTES``): the
    link opens on a phone, often over a metered connection. What cannot shrink that far
    (audio, video, an animation) is linked cleaned at full size."""
    out = []
    for i, (ct, data) in enumerate(media):
        part = MediaPart(content_type=ct, data=data, content_id=f"media{i}", name=f"media[{i}]")
        try:
            result = adapt_parts(
                [part],
                budget_bytes=LINK_RENDITION_BYTES,
                overhead_bytes=0,
                max_image_pixels=LINK_RENDITION_PIXELS,
                allow_first_frame=False,
            )
            if not result.fits:
                result = adapt_parts([part], budget_bytes=NO_BUDGET)
        except MediaTooLargeError as exc:
            raise PayloadTooLarge(str(exc), field=exc.part, code="media_too_large") from None
        except PipelineMediaError as exc:
            raise UnsupportedMedia(str(exc), field=exc.part, code=exc.code) from None
        out += [(p.content_type, p.data) for p in result.parts]
    return out


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class RouteLimits:
    max_message_bytes: int
    max_recipients_per_submit: int
    default_validity_seconds: float
    transfer_encoding: Literal["binary", "base64"] = "binary"
    mms: bool = True
    media_policy: Literal["adapt", "link", "reject"] = "adapt"
    max_image_pixels: int | None = None
    allowed_types: frozenset[str] | None = None
    sender: str | None = None
    allow_first_frame: bool = True
    #: ``[[mmsc]] fallback`` and ``fallback_on`` (DESIGN.md §13).
    fallback: Literal["none", "link", "sms"] = "link"
    fallback_on: frozenset[str] = frozenset()

    @property
    def sms_only(self) -> bool:
        """Takes no MMS and falls back to SMS for that: nothing goes to the MMSC."""
        return not self.mms and self.fallback == "sms" and "no_mms" in self.fallback_on


@dataclass(frozen=True, slots=True)
class Content:
    """What will be sent: content parts (text, SMIL, media) or text only."""

    parts: list[MediaPart]
    text: str | None
    original: int
    adapted: int
    fallback: str | None
    #: sha256 of each of ``parts`` when already known (memoised adaptation), else empty.
    digests: tuple[str, ...] = ()
    #: Every recipient gets an SMS instead (its routes take no MMS and fall back to SMS).
    sms_only: bool = False


class SubmissionService:
    def __init__(
        self,
        *,
        store: Store,
        media_store: MediaStorage,
        router: Router,
        limits: dict[str, RouteLimits],
        queue: QueueGauge,
        max_queue_depth: int,
        wake: Callable[[str], None],
        on_accepted: Callable[[MessageRecord], None],
        fetch_policy: FetchPolicy,
        http: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        on_media_action: Callable[[str], None] = lambda _action: None,
        link_for: Callable[[str], str] | None = None,
        allow_private_callbacks: bool = False,
        optout: OptOut | None = None,
        pools: dict[str, SenderPool] | None = None,
        on_pool_send: Callable[[str, str], None] = lambda _pool, _sender: None,
        on_refusal: Callable[[str, str], None] = lambda _pool, _reason: None,
    ) -> None:
        #: ``[[pool]]`` name -> its sender choice; counters of sends and refusals by pool.
        self.pools = pools or {}
        self.on_pool_send = on_pool_send
        self.on_refusal = on_refusal
        self.allow_private_callbacks = allow_private_callbacks
        #: The suppression list (``None``: opt-out handling is off).
        self.optout = optout
        #: 32 random hex digits for a new message id (``msg_`` + it).
        self.new_id = new_id
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
        self.on_media_action = on_media_action
        self._adapt_cache: OrderedDict[object, tuple[AdaptResult, tuple[str, ...]]] = OrderedDict()
        #: sha256 of stored media -> signed public URL (set once callbacks have a key).
        self.link_for = link_for

    def _queue_full(self) -> Backpressure:
        return Backpressure(
            f"the queue holds {self.queue.total} submissions; its limit is {self.max_queue_depth}",
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
        # The media pipeline sniffs the real type; the declared one is only a hint.
        return declared or "application/octet-stream", data

    async def _prepare_content(
        self,
        request: SubmitRequest,
        routes: tuple[str, ...],
        media: list[tuple[str, bytes]],
        *,
        text_only: bool = False,
    ) -> Content:
        """Sniff, adapt or fall back to a link, so the content fits every route involved."""
        first = self.limits[routes[0]]
        budget = min(self.limits[r].max_message_bytes for r in set(routes))
        parts: list[MediaPart] = []
        if request.text and media:
            parts.append(
                MediaPart(
                    content_type="text/plain; charset=utf-8",
                    data=request.text.encode(),
                    content_id="text",
                )
            )
        parts += [
            MediaPart(content_type=ct, data=data, content_id=f"media{i}", name=f"media[{i}]")
            for i, (ct, data) in enumerate(media)
        ]
        original = (
            ENVELOPE_OVERHEAD + len((request.text or "").encode()) + sum(len(d) for _, d in media)
        )
        if all(self.limits[r].sms_only for r in set(routes)):
            # Kept as parts (cleaned like a link's media) for the SMS's short link.
            cleaned = await asyncio.to_thread(_clean_for_link, media) if media else []
            return Content(
                parts=[
                    MediaPart(content_type=ct, data=data, content_id=f"media{i}")
                    for i, (ct, data) in enumerate(cleaned)
                ],
                text=request.text, original=original, adapted=original, fallback="sms",
                sms_only=True,
            )  # fmt: skip
        if not media:
            return Content(
                parts=[], text=request.text, original=original, adapted=original, fallback=None
            )
        if any(not self.limits[r].mms and self.limits[r].fallback == "none" for r in routes):
            raise UnsupportedMedia(
                "the route takes no MMS and has no fallback for media",
                field="media",
                code="media_not_carried",
            )
        if text_only:  # a pool without an MMS sender
            return await self._link_fallback(request, media, original, "pool has no MMS sender")
        if not all(self.limits[r].mms for r in set(routes)):
            # Not carried as MMS, but still handed out by our own public URL: only media we
            # would have carried, sniffed from its bytes like any other part.
            try:
                return await self._link_fallback(
                    request, media, original, "route does not take MMS"
                )
            except (PayloadTooLarge, UnsupportedMedia):
                self.on_media_action("rejected")
                raise
        overhead = envelope_overhead(
            max(
                min(self.limits[r].max_recipients_per_submit, routes.count(r)) for r in set(routes)
            ),
            request.subject,
        )
        try:
            result, digests = await self._adapt(parts, budget, first, overhead)
        except MediaTooLargeError as exc:
            self.on_media_action("rejected")
            raise PayloadTooLarge(str(exc), field=exc.part, code="media_too_large") from None
        except PipelineMediaError as exc:
            self.on_media_action("rejected")
            raise UnsupportedMedia(str(exc), field=exc.part, code=exc.code) from None
        if result.fits:
            # One count per media part (not the text or the generated SMIL).
            for action, part in zip(result.actions, result.parts, strict=True):
                if not part.content_type.startswith(("text/plain", "application/smil")):
                    self.on_media_action(action)
            return Content(
                parts=list(result.parts),
                text=request.text,
                original=original,
                adapted=ENVELOPE_OVERHEAD + sum(len(p.data) for p in result.parts),
                fallback=None,
                digests=digests,
            )
        if first.media_policy == "reject":
            self.on_media_action("rejected")
            raise PayloadTooLarge(
                f"the media cannot fit the {budget}-byte limit of route {routes[0]}",
                field="media",
                code="media_too_large",
            )
        return await self._link_fallback(request, media, original, "media cannot fit")

    async def _adapt(
        self, parts: list[MediaPart], budget: int, limits: RouteLimits, overhead: int
    ) -> tuple[AdaptResult, tuple[str, ...]]:
        """``adapt_parts`` in a worker thread, memoised: a campaign repeats the same media,
        and adaptation is deterministic, so the same input and limits give the same output.

        Returns the result and the sha256 of each output part (hashed once, not per message).
        """
        digests = await run_sized(
            sum(len(p.data) for p in parts),
            lambda: tuple((p.content_type, p.content_id, _sha256(p.data)) for p in parts),
        )
        key = (
            digests,
            budget,
            overhead,
            limits.max_image_pixels,
            limits.allowed_types,
            limits.media_policy,
            limits.transfer_encoding,
            limits.allow_first_frame,
        )
        cached = self._adapt_cache.get(key)
        if cached is not None:
            self._adapt_cache.move_to_end(key)
            return cached

        def run() -> tuple[AdaptResult, tuple[str, ...]]:
            result = adapt_parts(
                parts,
                budget_bytes=budget,
                overhead_bytes=overhead,
                max_image_pixels=limits.max_image_pixels,
                allowed_types=limits.allowed_types,
                policy=limits.media_policy,
                transfer_encoding=limits.transfer_encoding,
                allow_first_frame=limits.allow_first_frame,
                add_smil=True,
            )
            return result, tuple(hashlib.sha256(p.data).hexdigest() for p in result.parts)

        entry = await asyncio.to_thread(run)
        self._adapt_cache[key] = entry
        if len(self._adapt_cache) > ADAPT_CACHE_ENTRIES:
            self._adapt_cache.popitem(last=False)
        return entry

    async def _link_fallback(
        self, request: SubmitRequest, media: list[tuple[str, bytes]], original: int, why: str
    ) -> Content:
        if self.link_for is None:
            raise PayloadTooLarge(f"{why} and link fallback is not available", field="media")
        links = []
        for _, data in await asyncio.to_thread(_clean_for_link, media):
            digest = await self.media_store.put(data)
            links.append(self.link_for(digest))
        self.on_media_action("link_fallback")
        text = "\n".join([*(t for t in [request.text] if t), *links])
        return Content(
            parts=[], text=text, original=original, adapted=len(text.encode()), fallback="link"
        )

    async def submit(
        self,
        api_key: str,
        request: SubmitRequest,
        *,
        idempotency_key: str | None,
        request_hash: str | None,
        check_optout: bool = True,
    ) -> tuple[MessageRecord, bool]:
        if request.callback_url is not None:
            check_callback_url(request.callback_url, allow_private=self.allow_private_callbacks)
        routes = tuple(self.router.route_for(number, request.route) for number in request.to)
        batches = self._batch_counts(routes)
        needed = sum(batches.values())
        if not self.queue.reserve(needed, self.max_queue_depth):
            raise self._queue_full()
        try:
            record, created, batches = await self._submit_reserved(
                api_key, request, routes, idempotency_key, request_hash, check_optout=check_optout
            )
        finally:
            self.queue.release(needed)
        if created:
            self._enqueued(batches)
            self.on_accepted(record)
            log.info(
                "message accepted",
                message_id=record.id,
                route=record.route,
                recipients=len(request.to),
                media_parts=len(record.parts),
                fallback=record.fallback,
            )
        return record, created

    def _batch_counts(self, routes: tuple[str, ...]) -> dict[str, int]:
        """SubmitReqs per route for recipients on ``routes`` (one entry per recipient)."""
        return {
            route: -(-routes.count(route) // max(1, self.limits[route].max_recipients_per_submit))
            for route in set(routes)
        }

    def _enqueued(self, batches: dict[str, int]) -> None:
        for route, count in batches.items():
            self.queue.add(route, count)
            self.wake(route)

    def text_message(self, api_key: str, request: SubmitRequest) -> NewMessage:
        """The record of a text-only message, built but not stored.

        For a caller that commits it in its own transaction: the STOP confirmation is
        committed with the inbound message that asked for it, so a crash cannot separate
        them. There is no back-pressure or opt-out check here (one short reply per
        keyword, which carriers expect to get through); call :meth:`committed` after the
        commit so the workers send it.

        Raises:
            ValidationError: media in the request, an unknown route, or no route.
        """
        if request.media:
            raise ValidationError("a text message carries no media", field="media")
        routes = tuple(self.router.route_for(number, request.route) for number in request.to)
        original = ENVELOPE_OVERHEAD + len((request.text or "").encode())
        content = Content(
            parts=[], text=request.text, original=original, adapted=original, fallback=None
        )
        return self._new_message(api_key, request, routes, content, (), None, None, self.clock())

    def committed(self, new: NewMessage) -> None:
        """A :meth:`text_message` record was committed: count its batches, wake workers."""
        self._enqueued(self._batch_counts(new.recipient_routes))
        log.info("message accepted", message_id=new.id, route=new.route, recipients=1)

    async def build_content(
        self, request: SubmitRequest, routes: tuple[str, ...], *, text_only: bool = False
    ) -> tuple[Content, tuple[PartRef, ...]]:
        """Resolve, sniff and adapt the request's media for ``routes``, and store the parts
        (durably: before any message row refers to them)."""
        media = [await self._resolve_media(item) for item in request.media]
        content = await self._prepare_content(request, routes, media, text_only=text_only)
        parts: list[PartRef] = []
        for index, part in enumerate(content.parts):
            known = content.digests[index] if content.digests else None
            digest = await self.media_store.put(part.data, digest=known)
            parts.append(
                PartRef(
                    content_type=part.content_type,
                    sha256=digest,
                    size=len(part.data),
                    content_id=part.content_id or f"part{len(parts)}",
                    name=part.name,
                )
            )
        return content, tuple(parts)

    async def _submit_reserved(
        self,
        api_key: str,
        request: SubmitRequest,
        routes: tuple[str, ...],
        idempotency_key: str | None,
        request_hash: str | None,
        *,
        check_optout: bool,
    ) -> tuple[MessageRecord, bool, dict[str, int]]:
        """Commit the message; returns the record, whether it is new and its SubmitReqs
        per route (refused recipients have none; a pool may split recipients by sender
        and due time)."""
        pool = self._pool(request)
        # Route-level opt-out (senders outside pools): a recipient that sent STOP to this
        # sender is refused alone; only when all are does the POST answer 403. The store
        # checks it in the transaction that creates the message (no extra round trip, and
        # a STOP committed meanwhile is not missed).
        optout = self.optout
        optout_senders: tuple[str, ...] = ()
        if pool is None and optout is not None and check_optout:
            optout_senders = optout.senders(routes, request.sender)
            if request.media:
                # Answer a message nobody may get before fetching and adapting its media.
                refusals = await optout.refusals(request.to, routes, request.sender)
                if len(refusals) == len(request.to):
                    raise ForbiddenError(
                        f"{len(refusals)} recipient(s) opted out of messages from this sender",
                        field="to",
                        code="recipient_opted_out",
                    )
        content, parts = await self.build_content(
            request, routes, text_only=pool is not None and not pool.spec.has_mms
        )
        now = self.clock()
        new = self._new_message(
            api_key, request, routes, content, parts, idempotency_key, request_hash, now,
            optout_senders=optout_senders,
        )  # fmt: skip
        if pool is not None:
            sticky = await self.store.sticky_senders(pool.spec.name, list(new.recipients))
            new = assign_senders(
                new, pool, sticky, now, client_expiry=request.expires_at is not None
            )
        try:
            record, created = await self.store.create_message(new)
        except RecipientsRefused as exc:
            if pool is not None:
                for _, reason in exc.refusals:
                    self.on_refusal(pool.spec.name, reason)
            raise
        refused = {i for i, r in enumerate(record.recipients) if r.status == "rejected"}
        if created and pool is not None:
            for recipient in record.recipients:
                if recipient.status == "rejected":
                    self.on_refusal(pool.spec.name, (recipient.error or "").split(":")[0])
                elif recipient.sender:
                    self.on_pool_send(pool.spec.name, recipient.sender)
        counts: dict[str, int] = {}
        for route, *_ in plan_batches(new, refused):
            counts[route] = counts.get(route, 0) + 1
        return record, created, counts

    def _pool(self, request: SubmitRequest) -> SenderPool | None:
        if request.pool is None:
            return None
        pool = self.pools.get(request.pool)
        if pool is None:
            raise ValidationError(f"no pool {request.pool!r}", field="pool", code="unknown_pool")
        return pool

    def _new_message(
        self,
        api_key: str,
        request: SubmitRequest,
        routes: tuple[str, ...],
        content: Content,
        parts: tuple[PartRef, ...],
        idempotency_key: str | None,
        request_hash: str | None,
        now: float,
        *,
        optout_senders: tuple[str, ...] = (),
    ) -> NewMessage:
        first = routes[0]
        send_at = max(now, request.send_at or now)
        expires_at = request.expires_at or (send_at + self.limits[first].default_validity_seconds)
        if expires_at <= now or expires_at <= send_at:
            raise ValidationError(
                "expires_at must be in the future and after send_at", field="expires_at"
            )
        return NewMessage(
            id="msg_" + self.new_id(),
            api_key=api_key,
            route=first,
            recipients=request.to,
            recipient_routes=routes,
            sender=request.sender,
            subject=request.subject,
            text=content.text,
            parts=parts,
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
            fallback=content.fallback,
            original_bytes=content.original,
            adapted_bytes=content.adapted,
            sms_only=content.sms_only,
            optout_senders=optout_senders,
        )

    async def replay(
        self, api_key: str, idempotency_key: str, request_hash: str | None
    ) -> MessageRecord | None:
        """The message an earlier request with this key created, or None if there is none.

        Raises:
            IdempotencyConflict: the key was used for a different request.
        """
        found = await self.store.find_idempotent(api_key, idempotency_key)
        if found is None:
            return None
        record, stored_hash = found
        if stored_hash is not None and request_hash is not None and stored_hash != request_hash:
            raise IdempotencyConflict(
                "this Idempotency-Key was used for a different request", field="Idempotency-Key"
            )
        return record

    async def get(self, api_key: str, message_id: str) -> MessageRecord:
        record = await self.store.get_message(message_id)
        if record is None or record.api_key != api_key:
            raise NotFoundError(f"no message {message_id}")
        return record

    # -- for bulk sends (outbound/campaigns.py): the same rules, one content for many --
    def queue_full(self) -> Backpressure:
        return self._queue_full()

    def pool_for(self, request: SubmitRequest) -> SenderPool | None:
        """The request's ``[[pool]]``, if it names one (ValidationError: an unknown one)."""
        return self._pool(request)

    def new_message(
        self,
        api_key: str,
        request: SubmitRequest,
        routes: tuple[str, ...],
        content: Content,
        parts: tuple[PartRef, ...],
        now: float,
    ) -> NewMessage:
        """The record of ``request`` with prepared content, built but not stored."""
        return self._new_message(api_key, request, routes, content, parts, None, None, now)


def request_fingerprint(body: object, media_digests: list[str]) -> str:
    """Hash of a request for Idempotency-Key conflict detection."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(canonical.encode())
    for item in media_digests:
        digest.update(item.encode())
    return digest.hexdigest()
