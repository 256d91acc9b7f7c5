"""Accepting messages from applications: validate, route, store media, commit, wake.

The content (media fetched, adapted or linked, and stored) comes from ``content_fit``.

The order matters for durability: media bytes are written (fsynced) to the content-
addressed store first, then the message and its batches are committed in one
transaction, and only then is the client answered and the dispatcher woken.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import structlog

from gateway.errors import (
    Backpressure,
    ForbiddenError,
    IdempotencyConflict,
    NotFoundError,
    ValidationError,
)
from gateway.media.fetch import address_allowed
from gateway.outbound.content_fit import ENVELOPE_OVERHEAD, Content, ContentFitter
from gateway.outbound.pools import SenderPool, assign_senders
from gateway.outbound.queue import QueueGauge
from gateway.outbound.request import SubmitRequest
from gateway.outbound.routing import Router
from gateway.store import MessageRecord, NewMessage, PartRef, Store
from gateway.store.records import RecipientsRefused, plan_batches

if TYPE_CHECKING:
    from gateway.outbound.suppression import OptOut

log = structlog.get_logger("gateway.outbound.submission")


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


class SubmissionService:
    def __init__(
        self,
        *,
        store: Store,
        router: Router,
        content: ContentFitter,
        queue: QueueGauge,
        max_queue_depth: int,
        wake: Callable[[str], None],
        on_accepted: Callable[[MessageRecord], None],
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
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
        self.router = router
        #: Media fetched, sniffed, adapted (or linked) and stored for the routes involved.
        self.content = content
        self.limits = content.limits
        self.queue = queue
        self.max_queue_depth = max_queue_depth
        self.wake = wake
        self.on_accepted = on_accepted
        self.clock = clock

    def _queue_full(self) -> Backpressure:
        return Backpressure(
            f"the queue holds {self.queue.total} submissions; its limit is {self.max_queue_depth}",
            retry_after=5,
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
        content, parts = await self.content.build(
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
