"""Cancel and replace of accepted messages (``DELETE``/``PUT /v1/messages/{id}``).

What is still queued is changed in the store; what the MMSC already accepted is changed
at the MMSC with a CancelReq or ReplaceReq through the route's worker, and the store
follows the MMSC's answer. A cancel asked for while a SubmitReq is on the wire is
flagged on the batch and sent when its SubmitRsp is recorded (or at the next start).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from gateway.errors import MmscUnavailable, StateConflict
from gateway.outbound.request import ReplaceRequest, SubmitRequest
from protocol import Response, is_success

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gateway.ops.metrics import Metrics
    from gateway.outbound.content import RecentMessages
    from gateway.outbound.dispatcher import RouteWorker
    from gateway.outbound.queue import QueueGauge
    from gateway.outbound.submission import SubmissionService
    from gateway.store import MessageRecord, ReplacePlan, Store

log = structlog.get_logger("gateway.outbound.control")


@dataclass
class _Answers:
    """How an MMSC answered one request per submitted batch (see MessageControl._ask_mmsc)."""

    done: list[tuple[int, str]] = field(default_factory=list)  # (batch_id, route)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (batch_id, status)
    unreachable: int = 0

    def raise_for(self, operation: str, when_unanswered: str) -> None:
        """409 when the MMSC refused any, 502 when it did not answer some."""
        if self.refused:
            raise StateConflict(
                f"the MMSC refused to {operation}: {'; '.join(t for _, t in self.refused)}",
                code=f"{operation}_refused",
            )
        if self.unreachable:
            raise MmscUnavailable(
                f"the MMSC did not answer the {operation.capitalize()}Req; {when_unanswered}"
            )


class MessageControl:
    """Cancel and replace, shared by every route (one per gateway)."""

    def __init__(
        self,
        *,
        store: Store,
        workers: Mapping[str, RouteWorker],
        submissions: SubmissionService,
        recent: RecentMessages,
        queue: QueueGauge,
        metrics: Metrics,
        clock: Callable[[], float],
        hold_seconds: float,
    ) -> None:
        self.store = store
        self.workers = workers
        self.submissions = submissions
        self.recent = recent
        self.queue = queue
        self.metrics = metrics
        self.clock = clock
        #: How long queued batches are held while a replacement runs: longer than any
        #: ReplaceReq can take, so a worker never sends the old content meanwhile.
        self.hold_seconds = hold_seconds

    async def _ask_mmsc(
        self,
        batches: list[tuple[int, str, str]],
        send: Callable[[RouteWorker, int, str], Awaitable[Response | None]],
    ) -> _Answers:
        """Send one request per submitted batch ``(batch_id, route, mm7_message_id)`` and
        sort the answers: success, refusal (with its status) or no answer."""
        answers = _Answers()
        for batch_id, route, mm7_message_id in batches:
            worker = self.workers.get(route)
            if worker is None:
                continue
            response = await send(worker, batch_id, mm7_message_id)
            if response is None:
                answers.unreachable += 1
            elif is_success(response.status_code):
                answers.done.append((batch_id, route))
            else:
                text = f"{response.status_code} {response.status_text or ''}".strip()
                answers.refused.append((batch_id, text))
        return answers

    async def cancel(self, record: MessageRecord) -> MessageRecord:
        """DELETE /v1/messages/{id}: dequeue what is unsent, CancelReq what was submitted."""
        plan = await self.store.cancel_message(record.id, self.clock())
        answers = await self._ask_mmsc(
            plan.submitted,
            lambda worker, batch_id, mm7_id: worker.cancel_submitted(
                mm7_id, f"{record.id}-cancel-{batch_id}"
            ),
        )
        for batch_id, route in answers.done:
            await self.store.mark_batch_canceled(batch_id, self.clock())
            self.metrics.submission_outcomes_total.labels(mmsc=route, outcome="canceled").inc()
        for batch_id, _ in answers.refused:
            await self.store.clear_cancel_request(batch_id, self.clock())
        # Unanswered ones stay flagged: retried when the route's worker next starts.
        log.info(
            "cancel requested",
            message_id=record.id,
            canceled_at_mmsc=len(answers.done),
            refused=len(answers.refused),
            unreachable=answers.unreachable,
            in_flight=plan.in_flight,
        )
        self.queue.reload(await self.store.queue_depths())
        answers.raise_for("cancel", "the cancel stays requested and is sent again when the "
                          "route's worker next starts")  # fmt: skip
        if plan.without_message_id:
            raise StateConflict(
                f"{plan.without_message_id} submission(s) of this message were accepted by "
                "the MMSC without a MessageID, so no CancelReq can name them; anything still "
                "queued was canceled",
                code="cancel_not_possible",
            )
        updated = await self.store.get_message(record.id)
        return updated or record

    async def replace(self, record: MessageRecord, replacement: ReplaceRequest) -> MessageRecord:
        """PUT /v1/messages/{id}: new content for what is queued; MM7 ReplaceReq for what
        the MMSC accepted and has not delivered yet."""
        # Queued batches are held for the duration (longer than any ReplaceReq can take):
        # a worker must not send the old content while the new one is being put in place.
        plan = await self.store.replace_plan(
            record.id, hold_until=self.clock() + self.hold_seconds
        )
        try:
            return await self._replace(record, replacement, plan)
        finally:
            await self.store.release_hold(plan.held)
            for route in plan.routes:
                worker = self.workers.get(route)
                if worker is not None:
                    worker.wake()

    async def _replace(
        self, record: MessageRecord, replacement: ReplaceRequest, plan: ReplacePlan
    ) -> MessageRecord:
        if plan.in_flight:
            raise StateConflict(
                "a SubmitReq of this message is on the wire; try again in a moment",
                code="message_in_flight",
                retry_after=1,
            )
        if not plan.queued and not plan.submitted:
            raise StateConflict(
                f"the message is {record.status}: nothing is left to replace",
                code="message_final",
            )
        request = SubmitRequest(
            to=tuple(r.address for r in record.recipients),
            sender=record.sender,
            subject=replacement.subject,
            text=replacement.text,
            media=replacement.media,
        )
        # Each route counted once per recipient: the envelope budget then assumes the
        # fullest batch possible (conservative; which recipient is on which route does not
        # matter for fitting the content).
        routes = plan.routes * max(1, len(record.recipients))
        content, parts = await self.submissions.content.build(request, routes)
        candidate = dataclasses.replace(
            record,
            subject=replacement.subject,
            text=content.text,
            parts=parts,
            fallback=content.fallback,
        )
        stamp = int(self.clock() * 1000)
        answers = await self._ask_mmsc(
            plan.submitted,
            lambda worker, batch_id, mm7_id: worker.replace_submitted(
                mm7_id, f"{record.id}-replace-{batch_id}-{stamp}", candidate
            ),
        )
        log.info(
            "replace requested",
            message_id=record.id,
            queued=plan.queued,
            replaced_at_mmsc=len(answers.done),
            refused=len(answers.refused),
            unreachable=answers.unreachable,
        )
        answers.raise_for("replace", "nothing was changed")
        updated = await self.store.replace_content(
            record.id,
            subject=replacement.subject,
            text=content.text,
            parts=parts,
            fallback=content.fallback,
            original_bytes=content.original,
            adapted_bytes=content.adapted,
            now=self.clock(),
        )
        self.recent.discard(record.id)  # queued batches must send the new content
        return updated or record

    async def resume_cancels(self) -> None:
        """Cancels asked for while a submission was in flight and not done before a stop."""
        for worker in self.workers.values():
            await worker.resume_cancels()
