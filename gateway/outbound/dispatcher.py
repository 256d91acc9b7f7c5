"""Per-MMSC submission workers: claim due batches, throttle, send, record the outcome.

Theory of operation: each route has one worker loop. It claims only as many due batches
as it has free slots in its in-flight window (so a large queue stays in the database,
not in memory), waits for the route's token bucket (and the sender's, for long codes),
then starts one task per SubmitReq. Several requests are in flight per MMSC at once:
that is the point of the window. Outcomes are written back durably; retries are
rescheduled in the database with back-off, so a crash loses nothing (batches found
in_flight at start are queued again: at-least-once).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from gateway.errors import GatewayError
from gateway.ops.log_context import bound_context
from gateway.ops.metrics import CIRCUIT_STATES, Metrics
from gateway.outbound.content import (
    MediaCache,
    RecentMessages,
    content_attachments,
    encode_stored_submit,
)
from gateway.outbound.mmsc_client import MmscClient, SendResult
from gateway.outbound.retry import GiveUp, Outcome, RetryPolicy, classify_status, decide
from gateway.outbound.throttle import KeyedBuckets, TokenBucket
from gateway.store import Batch, MessageRecord, Store
from gateway.store.history import AttemptRow
from protocol import (
    CancelReq,
    ErrorRsp,
    ProtocolError,
    ReplaceReq,
    Response,
    SenderIdentification,
    SubmitRsp,
    is_success,
    status_info,
)

log = structlog.get_logger("gateway.outbound.dispatcher")

#: Consecutive failed exchanges after which a route's circuit opens (``/healthz/routes``;
#: the worker sends one probe at a time, with growing pauses).
CIRCUIT_OPEN_AFTER = 5
#: Longest pause between probes of an open circuit: recovery is noticed within this time.
CIRCUIT_MAX_PAUSE_SECONDS = 30.0
#: How soon a worker asks again when due work is held back by the cluster's in-flight cap.
CAPPED_POLL_SECONDS = 0.05

_STATUS_CLASS_LABEL = {
    "success": "success",
    "client_error": "client_error",
    "server_error": "server_error",
    "service_error": "service_error",
}


#: Why a cancel asked for while the SubmitReq was on the wire could not be done.
NO_MESSAGE_ID = "cancel not possible: the MMSC accepted the submission without a MessageID"

#: ``(route, rate, burst) -> seconds to wait`` (0: a token was taken): the route's token
#: bucket shared by every gateway of a cluster (``Store.take_send_token``).
SharedRate = Callable[[str, float, float], Awaitable[float]]


@dataclass(frozen=True, slots=True)
class RouteSettings:
    name: str
    vasp_id: str | None
    vas_id: str | None
    sender: str | None
    tps: float
    burst: float
    max_in_flight: int
    per_sender_tps: float | None
    retry: RetryPolicy
    status_overrides: dict[int, str] = field(default_factory=dict)
    slow_down_factor: float = 0.5
    slow_down_recovery_seconds: float = 30.0
    #: Probe the MMSC after this long without any exchange (0: never), so a dead MMSC
    #: opens the circuit before traffic arrives.
    idle_probe_seconds: float = 60.0


class RouteWorker:
    def __init__(
        self,
        route: RouteSettings,
        store: Store,
        media: MediaCache,
        client: MmscClient,
        metrics: Metrics,
        *,
        on_finished: Callable[[str, int], None] | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        recent: RecentMessages | None = None,
        shared_rate: SharedRate | None = None,
        sender_tps: dict[str, float] | None = None,
    ) -> None:
        self.route = route
        #: Pool senders' own rates (``[[pool.sender]] tps``), held with ``per_sender_tps``.
        self.sender_tps = sender_tps or {}
        #: The cluster's token bucket for this route, when several gateways share the
        #: store (``None``: this process's bucket is the whole route's).
        self.shared_rate = shared_rate
        #: One send at a time asks the shared bucket (see ``_throttle``).
        self._shared_turn = asyncio.Lock()
        # Not ``recent or ...``: the shared cache is empty (falsy) when the workers start.
        self.recent = recent if recent is not None else RecentMessages(0)
        self.store = store
        self.media = media
        self.client = client
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()
        self.bucket = TokenBucket(route.tps, route.burst)
        self.sender_buckets = KeyedBuckets(route.per_sender_tps or 0.0)
        self.window = asyncio.Semaphore(max(1, route.max_in_flight))
        self.in_flight: dict[int, asyncio.Task[None]] = {}
        self.claimed: set[int] = set()
        self.wake_event = asyncio.Event()
        self._stopped = asyncio.Event()
        self.stopping = False
        self.consecutive_failures = 0
        self.last_slow_down = 0.0
        self.last_exchange = time.monotonic()
        self._probe_task: asyncio.Task[None] | None = None
        self.on_finished = on_finished
        # This route's metric children, resolved once: ``labels()`` costs microseconds a
        # call, several calls a message.
        name = route.name
        self._in_flight_gauge = metrics.in_flight.labels(mmsc=name)
        self._throttle_wait = metrics.throttle_wait_seconds.labels(mmsc=name)
        self._submit_latency = metrics.submit_latency_seconds.labels(mmsc=name)
        self._submit_requests: dict[str, Any] = {}
        self._outcomes: dict[str, Any] = {}
        for state in CIRCUIT_STATES:
            # Read at scrape time: the state is derived, there is no moment to set it.
            metrics.route_circuit_state.labels(mmsc=name, state=state).set_function(
                functools.partial(self._circuit_is, state)
            )
        self._probes = {
            outcome: metrics.route_probes_total.labels(mmsc=name, outcome=outcome)
            for outcome in ("ok", "failed")
        }

    def _count_outcome(self, outcome: str) -> None:
        counter = self._outcomes.get(outcome)
        if counter is None:
            counter = self._outcomes[outcome] = self.metrics.submission_outcomes_total.labels(
                mmsc=self.route.name, outcome=outcome
            )
        counter.inc()

    def _count_submit(self, status_class: str) -> None:
        counter = self._submit_requests.get(status_class)
        if counter is None:
            counter = self._submit_requests[status_class] = (
                self.metrics.submit_requests_total.labels(
                    mmsc=self.route.name, status_class=status_class
                )
            )
        counter.inc()

    # -- state for /healthz/routes, /readyz's body and the circuit metric ----------------------
    @property
    def circuit(self) -> str:
        if self.consecutive_failures >= CIRCUIT_OPEN_AFTER:
            return "open"
        if self.consecutive_failures > 0:
            return "degraded"
        return "closed"

    def _circuit_is(self, state: str) -> float:
        return 1.0 if self.circuit == state else 0.0

    def wake(self) -> None:
        self.wake_event.set()

    def is_stopping(self) -> bool:
        return self.stopping

    # -- main loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        while not self.stopping:
            if self.circuit == "open":
                await self._probe_pause()
                if self.is_stopping():
                    break
            await self.window.acquire()
            slots = 1
            # Claim for every free slot in one store round trip (one commit, not one each);
            # with the circuit open, one probe at a time.
            while not self.window.locked() and self.circuit != "open":
                await self.window.acquire()
                slots += 1
            if self.is_stopping():  # stop() may have run while we waited for a slot
                self._release(slots)
                break
            try:
                # The route's cap holds for the whole cluster: the store counts every
                # instance's in-flight batches, not just this window's.
                batches = await self.store.claim_due(
                    self.route.name, self.clock(), slots, max_in_flight=self.route.max_in_flight
                )
            except BaseException:
                # The supervisor restarts this loop: it must find its window slots free.
                self._release(slots)
                raise
            self._release(slots - len(batches))
            if not batches:
                await self._idle()
                continue
            for batch in batches:
                self.claimed.add(batch.id)
            for batch in batches:
                task = asyncio.create_task(self._send(batch), name=f"submit-{batch.id}")
                self.in_flight[batch.id] = task
            self._in_flight_gauge.set(len(self.in_flight))

    async def _probe_pause(self) -> None:
        """Circuit open (the MMSC keeps failing): wait for in-flight attempts, then pause
        before the next single probe, longer the longer the failures go on, so a dead MMSC
        gets a trickle of probes instead of every due retry."""
        if self.in_flight:
            await asyncio.wait(list(self.in_flight.values()))
        retry = self.route.retry
        excess = self.consecutive_failures - CIRCUIT_OPEN_AFTER
        delay = min(
            CIRCUIT_MAX_PAUSE_SECONDS,
            retry.max_backoff,
            retry.initial_backoff * retry.multiplier ** min(excess, 30),
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), delay)

    def _release(self, count: int) -> None:
        for _ in range(count):
            self.window.release()

    async def _idle(self) -> None:
        # Clear before reading: a wake that arrives during the read is then not lost.
        self.wake_event.clear()
        self._maybe_probe()
        next_due = await self.store.next_due_at(self.route.name)
        timeout = 1.0 if next_due is None else max(0.0, min(1.0, next_due - self.clock()))
        if next_due is not None and timeout == 0.0:
            # Work is due but the claim found none to take: peers hold the route's whole
            # max_in_flight (a shared store). Ask again shortly instead of spinning.
            timeout = CAPPED_POLL_SECONDS
        probing = self._probe_task is not None and not self._probe_task.done()
        if self.route.idle_probe_seconds > 0 and not probing:  # wake up for the next probe
            until_probe = self.last_exchange + self.route.idle_probe_seconds - time.monotonic()
            timeout = min(timeout, max(0.01, until_probe))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake_event.wait(), timeout)

    def _maybe_probe(self) -> None:
        """Start a probe of an idle route's MMSC when one is due (in the background: the
        loop keeps answering wake-ups while it runs)."""
        every = self.route.idle_probe_seconds
        if every <= 0 or self.in_flight or self.stopping:
            return
        if self._probe_task is not None and not self._probe_task.done():
            return
        if time.monotonic() - self.last_exchange >= every:
            self._probe_task = asyncio.create_task(self._probe(), name=f"probe-{self.route.name}")

    async def _probe(self) -> None:
        result = await self.client.probe()
        self.last_exchange = time.monotonic()
        if result.kind in ("network_error", "timeout", "http_error"):
            # Only an unreachable MMSC or a 5xx counts against the circuit; 405 and the
            # like still prove a live server behind the URL.
            self.consecutive_failures += 1
            self._probes["failed"].inc()
            log.warning("idle MMSC probe failed", mmsc=self.route.name, error=result.error)
        else:
            self.consecutive_failures = 0
            self._probes["ok"].inc()
        self.wake_event.set()  # the loop's idle wait was not shortened while we ran

    def _sender_wait(self, message: MessageRecord, batch: Batch) -> float:
        """Seconds until this batch's sender may send again (per-sender rate); takes the
        sender's token when it is free now."""
        sender = batch.sender or message.sender or self.route.sender or ""
        rates = [r for r in (self.route.per_sender_tps, self.sender_tps.get(sender)) if r]
        if not rates:
            return 0.0
        now = time.monotonic()
        # Both limits hold: the stricter one is the sender's rate.
        bucket = self.sender_buckets.get(sender, now, rate=min(rates))
        wait = bucket.peek(now)
        if wait <= 0:
            bucket.reserve(now)
        return wait

    async def _throttle(self) -> None:
        """Wait for the route's token: the last step before sending, so the MMSC sees the
        configured rate, not our processing jitter.

        The token is taken when the send really happens, not reserved ahead: a reserved
        slot woken late by a busy event loop would bunch up with the next ones, and the
        MMSC would see more than ``tps + burst`` in a second.
        """
        self._recover()
        started = time.monotonic()
        now = started
        while (delay := self.bucket.peek(now)) > 0:
            await asyncio.sleep(delay)
            now = time.monotonic()
        self.bucket.reserve(now)
        if self.shared_rate is not None and not self.bucket.unlimited:
            # Every instance also holds the route's rate locally (above), so the shared
            # bucket only ever makes an instance wait for its peers' sends. The sends
            # waiting here ask in turn (the lock is FIFO): each ask is a database
            # transaction, and all of a window's sends asking at every refill would cost
            # about max_in_flight transactions per token instead of one per instance.
            async with self._shared_turn:
                rate = self.bucket.effective_rate
                while True:
                    delay = await self.shared_rate(self.route.name, rate, self.route.burst)
                    if delay <= 0:
                        break
                    await asyncio.sleep(delay)  # a peer took the tokens: their refill time
            now = time.monotonic()
        self._throttle_wait.observe(now - started)

    def _recover(self) -> None:
        if self.bucket.factor < 1.0 and self.route.slow_down_recovery_seconds > 0:
            now = time.monotonic()
            if now - self.last_slow_down >= self.route.slow_down_recovery_seconds:
                self.bucket.recover(0.25)
                self.last_slow_down = now

    # -- one submission ----------------------------------------------------------------------------
    async def _send(self, batch: Batch) -> None:
        settled = False  # the store has the batch's outcome: nothing to hand back at stop
        try:
            with bound_context(
                message_id=batch.message_id,
                mmsc=self.route.name,
                transaction_id=batch.transaction_id,
            ):
                try:
                    await self._attempt(batch)
                    settled = True
                except (GatewayError, OSError, ProtocolError, ValueError) as exc:
                    # A bug or a store failure must not strand the batch in flight until the
                    # next restart: queue it again after a back-off.
                    log.exception("submission attempt failed", error=str(exc))
                    now = self.clock()
                    with contextlib.suppress(GatewayError, OSError):
                        await self._requeue(
                            batch, now + self.route.retry.initial_backoff, f"internal error: {exc}"
                        )
                        settled = True
        finally:
            self.in_flight.pop(batch.id, None)
            if settled:
                self.claimed.discard(batch.id)
            self._in_flight_gauge.set(len(self.in_flight))
            self.window.release()
            # A retry may now be due sooner than the loop's current idle wait.
            self.wake_event.set()

    async def _attempt(self, batch: Batch) -> None:
        now = self.clock()
        if now >= batch.expires_at:
            await self._give_up(batch, GiveUp("expired", "validity period ended before submission"))
            return
        message = self.recent.get(batch.message_id) or await self.store.get_message(
            batch.message_id
        )
        if message is None:
            log.error("batch without message", batch_id=batch.id)
            await self.store.mark_failed(batch.id, "failed", "message record missing", now)
            return
        sender_wait = self._sender_wait(message, batch)
        if sender_wait > 0:
            # A long code at its own limit: give the slot back to other senders' messages
            # rather than sleep on it, and come back when this sender may send again.
            await self._requeue(batch, now + sender_wait, "sender rate limit", count_attempt=False)
            return
        content_type, body = await encode_stored_submit(
            self.route, self.client.encode_async, self.media, message, batch
        )
        await self._throttle()
        result = await self.client.post(content_type, body)
        self._submit_latency.observe(result.seconds)
        await self._record(batch, result)

    def _attempt_row(
        self, batch: Batch, result: SendResult, outcome: str, now: float
    ) -> AttemptRow:
        """The console's record of this exchange: the MMSC's status, or the transport error."""
        response = result.message
        answered = None
        if result.kind == "response" and isinstance(response, Response):
            answered = response
        return AttemptRow(
            batch_id=batch.id,
            message_id=batch.message_id,
            attempt=batch.attempts,
            outcome=outcome,
            status_code=answered.status_code if answered else None,
            status_text=answered.status_text if answered else None,
            error=None if answered else (result.error or result.kind),
            at=now,
        )

    async def _record(self, batch: Batch, result: SendResult) -> None:
        now = self.clock()
        self.last_exchange = time.monotonic()
        response = result.message
        if result.kind == "response" and isinstance(response, Response):
            info = status_info(response.status_code)
            label = _STATUS_CLASS_LABEL.get(info.status_class.value, "service_error")
            self._count_submit(label)
            outcome: Outcome = classify_status(response.status_code, self.route.status_overrides)
            text = response.status_text or info.name
            reason = f"status {response.status_code} {text}"
            if outcome == "ok":
                self.consecutive_failures = 0
                mm7_id = response.message_id if isinstance(response, SubmitRsp) else None
                attempt = self._attempt_row(batch, result, "submitted", now)
                cancel_requested = await self.store.mark_submitted(
                    batch.id, mm7_id, now, attempt=attempt
                )
                self._count_outcome("submitted")
                with bound_context(mm7_message_id=mm7_id):
                    log.info("submitted", attempt=batch.attempts)
                    self._finished(batch)
                    if cancel_requested and mm7_id:
                        await self.cancel_after_submit(batch.id, batch.message_id, mm7_id)
                    elif cancel_requested:
                        # Nothing to name in a CancelReq: the message goes out; say so.
                        log.warning("cancel not possible: the SubmitRsp carried no MessageID")
                        await self.store.cancel_not_possible(batch.id, now, NO_MESSAGE_ID)
                return
            if isinstance(response, ErrorRsp) or outcome != "retry_slow_down":
                self.consecutive_failures += 0 if outcome == "fail" else 1
        else:
            label = {"timeout": "timeout", "network_error": "network_error"}.get(
                result.kind, "http_error"
            )
            self._count_submit(label)
            outcome = "retry"
            reason = result.error or result.kind
            self.consecutive_failures += 1
        if outcome == "retry_slow_down":
            self.bucket.slow_down(self.route.slow_down_factor)
            self.last_slow_down = time.monotonic()
        decision = decide(
            self.route.retry, outcome, batch.attempts, now, batch.expires_at, self.rng, reason
        )
        if isinstance(decision, GiveUp):
            await self._give_up(
                batch, decision, self._attempt_row(batch, result, decision.state, now)
            )
            return
        retry_reason = {
            "retry_slow_down": "slow_down",
            "timeout": "timeout",
            "network_error": "network",
        }.get(
            outcome if outcome == "retry_slow_down" else result.kind,
            "status" if result.kind == "response" else "http",
        )
        if await self._requeue(
            batch,
            decision.at,
            reason,
            count_attempt=outcome != "retry_slow_down",
            attempt=self._attempt_row(
                batch, result, "slow_down" if outcome == "retry_slow_down" else "retry", now
            ),
        ):
            return
        self.metrics.retries_total.labels(mmsc=self.route.name, reason=retry_reason).inc()
        log.info(
            "retry scheduled",
            reason=reason,
            attempt=batch.attempts,
            delay=round(decision.at - now, 3),
        )

    async def _requeue(
        self,
        batch: Batch,
        at: float,
        reason: str,
        *,
        count_attempt: bool = True,
        attempt: AttemptRow | None = None,
    ) -> bool:
        """Queue the batch again for ``at``; True when the store canceled it instead (a
        DELETE arrived while it was in flight, and the MMSC did not accept the attempt)."""
        canceled = await self.store.mark_retry(
            batch.id, at, reason, self.clock(), count_attempt=count_attempt, attempt=attempt
        )
        if canceled:
            self._count_outcome("canceled")
            log.info("canceled in flight, not retried", reason=reason)
            self._finished(batch)
        return canceled

    async def _give_up(
        self, batch: Batch, decision: GiveUp, attempt: AttemptRow | None = None
    ) -> None:
        await self.store.mark_failed(
            batch.id, decision.state, decision.reason, self.clock(), attempt=attempt
        )
        self._count_outcome(decision.state)
        log.warning("submission ended", state=decision.state, reason=decision.reason)
        self._finished(batch)

    def _finished(self, _batch: Batch) -> None:
        if self.on_finished is not None:
            self.on_finished(self.route.name, 1)

    # -- cancel ------------------------------------------------------------------------------------
    async def cancel_after_submit(self, batch_id: int, message_id: str, mm7_id: str) -> bool:
        """CancelReq for a batch whose cancel was asked for while it was in flight."""
        response = await self.cancel_submitted(mm7_id, f"{message_id}-cancel-{batch_id}")
        if response is not None and is_success(response.status_code):
            await self.store.mark_batch_canceled(batch_id, self.clock())
            self._count_outcome("canceled")
            log.info("canceled after submission", mm7_message_id=mm7_id)
            return True
        if response is not None:  # a definitive refusal (e.g. already delivered): stop asking
            await self.store.clear_cancel_request(batch_id, self.clock())
        log.warning(
            "cancel after submission not done",
            mm7_message_id=mm7_id,
            status=None if response is None else response.status_code,
        )
        return False

    async def resume_cancels(self) -> None:
        """At start: cancels that were requested in flight and not done before a stop."""
        for batch_id, message_id, mm7_id in await self.store.pending_cancels(self.route.name):
            with contextlib.suppress(GatewayError, OSError):
                await self.cancel_after_submit(batch_id, message_id, mm7_id)

    async def cancel_submitted(self, mm7_message_id: str, transaction_id: str) -> Response | None:
        request = CancelReq(
            transaction_id=transaction_id,
            sender_identification=SenderIdentification(
                vasp_id=self.route.vasp_id, vas_id=self.route.vas_id
            ),
            message_id=mm7_message_id,
        )
        result = await self.client.send(request)
        return result.message if isinstance(result.message, Response) else None

    async def replace_submitted(
        self, mm7_message_id: str, transaction_id: str, message: MessageRecord
    ) -> Response | None:
        """ReplaceReq: the MMSC swaps the content of a message it has not delivered yet."""
        media = {p.sha256: await self.media.get(p.sha256) for p in message.parts}
        request = ReplaceReq(
            transaction_id=transaction_id,
            sender_identification=SenderIdentification(
                vasp_id=self.route.vasp_id, vas_id=self.route.vas_id
            ),
            message_id=mm7_message_id,
            attachments=content_attachments(message, media),
        )
        result = await self.client.send(request)
        return result.message if isinstance(result.message, Response) else None

    # -- shutdown ----------------------------------------------------------------------------------
    async def stop(self, grace: float, run_task: asyncio.Task[None] | None = None) -> None:
        """Stop claiming, let in-flight submissions finish within ``grace`` seconds, and
        hand anything still unsent back to the queue."""
        self.stopping = True
        self._stopped.set()
        self.wake_event.set()
        if self._probe_task is not None:
            self._probe_task.cancel()
            await asyncio.gather(self._probe_task, return_exceptions=True)
        self.window.release()  # unblock a loop waiting for a slot; we no longer claim
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace  # one budget for the loop and the in-flight work
        if run_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(run_task), grace)
            except TimeoutError:
                run_task.cancel()
                await asyncio.gather(run_task, return_exceptions=True)
        tasks = list(self.in_flight.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - loop.time()))
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        leftover = list(self.claimed)
        if leftover:
            await self.store.release(leftover, self.clock())
