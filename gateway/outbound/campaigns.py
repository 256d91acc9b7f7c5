"""Bulk sends (campaigns, DESIGN.md section 16): one content to many recipients.

The content is prepared once (media fetched, sniffed, adapted, SMIL built, stored) for
every route involved; the recipients are then committed in chunks, each a single store
operation that plans one message and one SubmitReq per ``max_recipients_per_submit``
recipients. Those SubmitReqs stay held until the last chunk is in and the campaign is
opened (one transaction), so the ``202`` comes after every recipient is durable and a
request that fails half-way sends nothing. From then on the campaign's messages are
ordinary messages: the route workers, reports, retries and cancels handle them as any
other; :class:`CampaignWatcher` turns their progress into ``batch.status`` events.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import structlog

from gateway.errors import NotFoundError, StateConflict, ValidationError
from gateway.outbound.pools import assign_senders
from gateway.outbound.submission import check_callback_url
from gateway.store.campaign_records import CampaignRecord, InvalidLine, NewCampaign

if TYPE_CHECKING:
    from gateway.outbound.queue import QueueGauge
    from gateway.outbound.recipient_list import RecipientList
    from gateway.outbound.request import SubmitRequest
    from gateway.outbound.routing import Router
    from gateway.outbound.submission import SubmissionService
    from gateway.outbound.suppression import OptOut
    from gateway.store import NewMessage, Store
    from gateway.store.campaign_records import CampaignRecipient

log = structlog.get_logger("gateway.outbound.campaigns")

#: Recipients per store operation: large enough that executemany dominates, small enough
#: that other requests' operations are not held up behind one chunk for long.
CHUNK_RECIPIENTS = 2000
#: Messages gone through per cancel operation (each may cancel one SubmitReq).
CANCEL_PAGE = 500
#: Recipient states in which something may still be canceled.
UNFINISHED_RECIPIENT_STATES = ("queued", "submitted", "sms_queued", "sms_submitted")
#: Refused recipients listed in the answer to the POST (the rest are counted).
MAX_REFUSED_LISTED = 1000


@dataclass(frozen=True, slots=True)
class Refused:
    """A recipient refused at submission (consent, opt-out, a cap): stored ``rejected``."""

    line: int
    value: str
    error: str


@dataclass(frozen=True, slots=True)
class Accepted:
    record: CampaignRecord
    created: bool
    refused: tuple[Refused, ...] = ()
    refused_count: int = 0


class CampaignService:
    """Accept, read, page and cancel campaigns for the REST API."""

    def __init__(
        self,
        *,
        store: Store,
        submissions: SubmissionService,
        router: Router,
        queue: QueueGauge,
        max_queue_depth: int,
        wake: Callable[[str], None],
        on_accepted: Callable[[str, int], None],
        clock: Callable[[], float],
        optout: OptOut | None = None,
    ) -> None:
        self.store = store
        self.submissions = submissions
        self.router = router
        self.queue = queue
        self.max_queue_depth = max_queue_depth
        self.wake = wake
        self.on_accepted = on_accepted
        self.clock = clock
        self.optout = optout

    def _route_counts(self, request: SubmitRequest, recipients: RecipientList) -> dict[str, int]:
        counts: dict[str, int] = {}
        for lines, numbers in recipients.chunks(CHUNK_RECIPIENTS):
            for line, number in zip(lines, numbers, strict=True):
                try:
                    route = self.router.route_for(number, request.route)
                except ValidationError as exc:
                    raise ValidationError(
                        f"line {line}: {exc.message}", field=exc.field, code=exc.code
                    ) from None
                counts[route] = counts.get(route, 0) + 1
        return counts

    async def create(
        self,
        api_key: str,
        request: SubmitRequest,
        recipients: RecipientList,
        *,
        events: str,
        idempotency_key: str | None,
    ) -> Accepted:
        """Prepare the content once, commit every recipient, open the campaign.

        Raises:
            ValidationError, ForbiddenError, PayloadTooLarge, UnsupportedMedia: as for
                ``POST /v1/messages``; nothing is stored.
            Backpressure: the queue has no room for the campaign's SubmitReqs.
        """
        if request.callback_url is not None:
            check_callback_url(
                request.callback_url, allow_private=self.submissions.allow_private_callbacks
            )
        counts = await asyncio.to_thread(self._route_counts, request, recipients)
        limits = self.submissions.limits
        needed = sum(
            -(-n // max(1, limits[r].max_recipients_per_submit)) for r, n in counts.items()
        )
        if not self.queue.reserve(needed, self.max_queue_depth):
            raise self.submissions.queue_full()
        try:
            return await self._create_reserved(
                api_key, request, recipients, counts, events, idempotency_key
            )
        finally:
            self.queue.release(needed)

    async def _create_reserved(
        self,
        api_key: str,
        request: SubmitRequest,
        recipients: RecipientList,
        counts: dict[str, int],
        events: str,
        idempotency_key: str | None,
    ) -> Accepted:
        limits = self.submissions.limits
        pool = self.submissions.pool_for(request)
        # The content must fit every route, with as many recipients per SubmitReq as each
        # route's batches will carry (their envelope grows with each).
        sizing = tuple(
            route
            for route, n in sorted(counts.items())
            for _ in range(min(n, limits[route].max_recipients_per_submit))
        )
        content, parts = await self.submissions.content.build(
            request, sizing, text_only=pool is not None and not pool.spec.has_mms
        )
        if content.sms_only:
            raise ValidationError(
                "bulk sends go out as MMS; this route only falls back to SMS",
                field="route",
                code="sms_only_route",
            )
        now = self.clock()
        template = replace(
            self.submissions.new_message(api_key, request, sizing, content, parts, now),
            batch_sizes={r: limits[r].max_recipients_per_submit for r in counts},
        )
        campaign_id, created = await self.store.create_campaign(
            NewCampaign(
                id="bat_" + uuid.uuid4().hex,
                api_key=api_key,
                events=events,
                callback_url=request.callback_url,
                client_ref=request.client_ref,
                idempotency_key=idempotency_key,
                created_at=now,
            )
        )
        if not created:
            return Accepted(await self._replayed(api_key, campaign_id), created=False)
        try:
            refused, refused_count, submits = await self._commit_recipients(
                campaign_id, template, request, recipients
            )
            invalid = [InvalidLine(e.line, e.value, e.error) for e in recipients.invalid]
            record = await self.store.open_campaign(
                campaign_id, invalid, recipients.invalid_count, self.clock()
            )
        except BaseException:
            # Never answered: its held SubmitReqs must not go out (a crash right here is
            # cleaned up at the next start, see discard_preparing_campaigns).
            await asyncio.shield(self.store.discard_campaign(campaign_id))
            raise
        for route, n in submits.items():
            self.queue.add(route, n)
            self.on_accepted(route, n)
            self.wake(route)
        log.info(
            "batch accepted",
            batch_id=campaign_id,
            recipients=len(recipients),
            refused=refused_count,
            invalid=recipients.invalid_count,
            submits=sum(submits.values()),
        )
        return Accepted(record, created=True, refused=tuple(refused), refused_count=refused_count)

    async def _commit_recipients(
        self,
        campaign_id: str,
        template: NewMessage,
        request: SubmitRequest,
        recipients: RecipientList,
    ) -> tuple[list[Refused], int, dict[str, int]]:
        pool = self.submissions.pool_for(request)
        refused: list[Refused] = []
        refused_count = 0
        submits: dict[str, int] = {}
        for lines, numbers in recipients.chunks(CHUNK_RECIPIENTS):
            routes = tuple(self.router.route_for(n, request.route) for n in numbers)
            chunk = replace(template, recipients=numbers, recipient_routes=routes)
            if pool is not None:
                sticky = await self.store.sticky_senders(pool.spec.name, list(numbers))
                chunk = assign_senders(
                    chunk, pool, sticky, template.created_at,
                    client_expiry=request.expires_at is not None,
                )  # fmt: skip
            elif self.optout is not None:
                chunk = replace(
                    chunk, refusals=await self.optout.refusals(numbers, routes, request.sender)
                )
            result = await self.store.add_campaign_chunk(campaign_id, chunk)
            for index, code, text in result.refused:
                refused_count += 1
                if pool is not None:
                    self.submissions.on_refusal(pool.spec.name, code)
                if len(refused) < MAX_REFUSED_LISTED:
                    refused.append(Refused(lines[index], numbers[index], f"{code}: {text}"))
            for route, n in result.submits.items():
                submits[route] = submits.get(route, 0) + n
        return refused, refused_count, submits

    async def _replayed(self, api_key: str, campaign_id: str) -> CampaignRecord:
        """The batch an Idempotency-Key already named; one still being committed (by this
        or another instance) has no answer yet, so the replay is told to come back."""
        record = await self.store.get_campaign(campaign_id)
        if record is not None and record.api_key == api_key and record.status == "preparing":
            raise StateConflict(
                "a batch with this Idempotency-Key is still being accepted; try again shortly",
                code="batch_in_progress",
                retry_after=1.0,
            )
        return await self.get(api_key, campaign_id)

    async def get(self, api_key: str, campaign_id: str) -> CampaignRecord:
        record = await self.store.get_campaign(campaign_id)
        # A campaign still being committed was never acknowledged: it does not exist yet.
        if record is None or record.api_key != api_key or record.status == "preparing":
            raise NotFoundError(f"no batch {campaign_id}")
        return record

    async def recipients(
        self,
        api_key: str,
        campaign_id: str,
        status: str | None,
        after: tuple[int, int] | None,
        limit: int,
    ) -> list[CampaignRecipient]:
        await self.get(api_key, campaign_id)
        return await self.store.campaign_recipients(campaign_id, status, after, limit)

    async def cancel(self, api_key: str, campaign_id: str) -> CampaignRecord:
        """Cancel every SubmitReq of the campaign not yet sent (in flight and submitted
        ones have gone to the MMSC and are left to finish)."""
        record = await self.get(api_key, campaign_id)
        # Before the watcher notices (it polls), the counts already tell.
        if record.status == "completed" or not any(
            record.counts.get(state, 0) for state in UNFINISHED_RECIPIENT_STATES
        ):
            raise StateConflict(
                "every recipient of this batch has a final status; nothing is left to cancel",
                code="batch_finished",
            )
        after, canceled = 0, 0
        while True:
            page = await self.store.cancel_campaign_page(
                campaign_id, after, CANCEL_PAGE, self.clock()
            )
            canceled += page.canceled
            if page.next_after is None:
                break
            after = page.next_after
        self.queue.reload(await self.store.queue_depths())
        log.info("batch canceled", batch_id=campaign_id, canceled_submissions=canceled)
        return await self.get(api_key, campaign_id)


class CampaignWatcher:
    """Moves campaigns through queued, sending, sent and completed as their messages
    progress, each change with its ``batch.status`` event (written by the store in the
    same transaction). Polls: a campaign's state is a summary, not worth a hook on the
    per-message hot path. On a shared store it also removes, now and then, campaigns a
    dead peer left ``preparing`` (their SubmitReqs held for a request never answered)."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        events_added: Callable[[], None],
        interval_seconds: float = 1.0,
        orphan_check_seconds: float = 60.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.events_added = events_added
        self.interval_seconds = interval_seconds
        self.orphan_check_seconds = orphan_check_seconds
        self._next_orphan_check = 0.0

    async def check(self) -> list[tuple[str, str]]:
        now = self.clock()
        changed = await self.store.campaign_progress(now)
        if changed:
            self.events_added()
        if now >= self._next_orphan_check:
            self._next_orphan_check = now + self.orphan_check_seconds
            discarded = await self.store.discard_preparing_campaigns(now, at_start=False)
            if discarded:
                log.warning("discarded unanswered bulk sends of a stopped instance",
                            count=discarded)  # fmt: skip
        return changed

    async def run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.interval_seconds)
