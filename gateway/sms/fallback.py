"""The SMS fallback worker: turns recorded SMS intents into Kannel sendsms calls.

Theory of operation (DESIGN.md §13). The decision is taken by the store, in the
transaction that makes a recipient rejected, failed or expired (or that stores a message
for a no-MMS route): if the recipient's route lists that cause in ``fallback_on``, an
intent row, unique per (recipient, cause), commits with the change. This worker claims
due intents (``sending``, attempt counted, committed before the call), builds the SMS
(the text, else the subject, plus a short link when the message has media; the text is
shortened so the link is never cut) and calls Kannel, then records the answer: accepted
(``sms_submitted``), a transient failure (back-off, then ``failed`` after
``max_attempts``) or a refusal (``failed``).

Kannel's sendsms has no idempotency key, so duplicates are bounded, not impossible: a
call whose answer we never recorded (a timeout, or a crash between the call and the
commit) is repeated only after ``resend_after_seconds`` without any Kannel report for
the intent. Every report proves Kannel took the SMS and marks the intent sent, so a
duplicate needs both a lost answer and a report that did not arrive in that time.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import structlog

from gateway.errors import StoreError
from gateway.ops.log_context import bound_context
from gateway.sms.segments import compose, segment_info

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable

    from gateway.ops.sms_metrics import SmsMetrics
    from gateway.sms.kannel import KannelClient
    from gateway.store import Store
    from gateway.store.records import PartRef, SmsJob

log = structlog.get_logger("gateway.sms")

_NOT_MEDIA: Final = ("text/plain", "application/smil")


@dataclass(frozen=True, slots=True)
class SmsSettings:
    tps: float = 10.0
    max_attempts: int = 8
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0
    max_segments: int = 3
    resend_after_seconds: float = 60.0
    #: Fixed sender of fallback SMS; None: the message's, else its route's.
    sender: str | None = None
    concurrency: int = 4
    poll_interval_seconds: float = 0.5


def has_media(parts: tuple[PartRef, ...]) -> bool:
    return any(not p.content_type.startswith(_NOT_MEDIA) for p in parts)


def sms_text(job: SmsJob, link: str | None, max_segments: int) -> str:
    """What the recipient reads: the text (the subject when there is none) and the link."""
    return compose((job.text or job.subject or "").strip(), link, max_segments)


class SmsWorker:
    def __init__(
        self,
        store: Store,
        client: KannelClient,
        settings: SmsSettings,
        metrics: SmsMetrics,
        *,
        short_link: Callable[[str], Awaitable[str]],
        dlr_url: Callable[[int], str],
        route_senders: dict[str, str | None],
        clock: Callable[[], float],
        rng: random.Random,
        on_change: Callable[[], None],
    ) -> None:
        self.store = store
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self.short_link = short_link
        self.dlr_url = dlr_url
        self.route_senders = route_senders
        self.clock = clock
        self.rng = rng
        self.on_change = on_change
        self.task: asyncio.Task[None] | None = None
        self.sending: set[asyncio.Task[None]] = set()
        self.wake_event = asyncio.Event()
        self.stopping = False
        self._next_slot = 0.0

    async def start(self) -> None:
        now = self.clock()
        left = await self.store.requeue_sms_sending(now + self.settings.resend_after_seconds, now)
        if left:
            log.warning("unanswered SMS calls of a previous run wait for a report", count=left)
        await self.client.open()
        self.task = asyncio.create_task(self.run(), name="sms-fallback")

    async def stop(self) -> None:
        self.stopping = True
        self.wake_event.set()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        if self.sending:
            await asyncio.gather(*self.sending, return_exceptions=True)
        await self.client.close()

    def wake(self) -> None:
        self.wake_event.set()

    async def run(self) -> None:
        while not self.stopping:
            self.wake_event.clear()
            free = self.settings.concurrency - len(self.sending)
            jobs: list[SmsJob] = []
            if free > 0:
                try:
                    jobs = await self.store.claim_sms(self.clock(), free)
                except StoreError as exc:
                    log.exception("cannot claim SMS intents", error=str(exc))
            for job in jobs:
                task = asyncio.create_task(self._send(job), name=f"sms-{job.id}")
                self.sending.add(task)
                task.add_done_callback(self._done)
            if jobs:
                continue
            timeout = self.settings.poll_interval_seconds
            with contextlib.suppress(StoreError):
                next_at = await self.store.next_sms_at()
                if next_at is not None:
                    timeout = max(0.0, min(timeout, next_at - self.clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake_event.wait(), timeout)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.sending.discard(task)
        self.wake_event.set()

    async def _pace(self) -> None:
        """Space sendsms calls ``1 / tps`` apart (slots are taken in claim order)."""
        now = self.clock()
        slot = max(now, self._next_slot)
        self._next_slot = slot + 1.0 / self.settings.tps
        if slot > now:
            await asyncio.sleep(slot - now)

    def _backoff(self, attempts: int) -> float:
        s = self.settings
        base = s.initial_backoff_seconds * 2.0 ** max(0, attempts - 1)
        return min(s.max_backoff_seconds, base) * self.rng.uniform(0.9, 1.1)

    async def _send(self, job: SmsJob) -> None:
        with bound_context(message_id=job.message_id, sms_intent=job.id):
            try:
                await self._attempt(job)
            except StoreError as exc:
                # The intent stays "sending": the next start requeues it (after the
                # resend delay, so a Kannel report can still prove it was sent).
                log.exception("cannot record an SMS attempt", error=str(exc))
            self.on_change()

    async def _attempt(self, job: SmsJob) -> None:
        if job.attempts == 1:
            self.metrics.fallbacks_total.labels(cause=job.cause).inc()
        link = await self.short_link(job.message_id) if has_media(job.parts) else None
        text = sms_text(job, link, self.settings.max_segments)
        info = segment_info(text)
        sender = self.settings.sender or job.sender or self.route_senders.get(job.route)
        await self._pace()
        result = await self.client.send(
            to=job.to, sender=sender, text=text, coding=info.coding, dlr_url=self.dlr_url(job.id)
        )
        now = self.clock()
        if result.outcome == "ok":
            await self.store.sms_sent(job.id, info.segments, info.coding, now)
            self.metrics.sends_total.labels(outcome="accepted").inc()
            self.metrics.segments_total.labels(coding=info.coding).inc(info.segments)
            log.info("fallback SMS accepted by Kannel", segments=info.segments, coding=info.coding)
            return
        if result.outcome == "fail" or job.attempts >= self.settings.max_attempts:
            await self.store.sms_failed(job.id, result.detail, now)
            self.metrics.sends_total.labels(outcome="failed").inc()
            log.warning("fallback SMS failed", attempts=job.attempts, error=result.detail)
            return
        delay = self._backoff(job.attempts)
        if result.detail == "timeout":
            # Kannel may have the SMS: give its report the time to say so (see module doc).
            delay = max(delay, self.settings.resend_after_seconds)
        await self.store.sms_retry(job.id, now + delay, result.detail, now)
        self.metrics.sends_total.labels(outcome="retry").inc()
        log.info("fallback SMS retry scheduled", attempts=job.attempts, error=result.detail)
