"""The storage contract the rest of the gateway codes against.

The interface speaks in records (``gateway.store.records``) and operations; no
connection or SQL crosses it, so a backend owns all of its statements. ``SqliteStore``
(``gateway/store/sqlite/``) is the embedded implementation. Every write operation is
durable when its coroutine returns, and each one is one transaction: a batch state
change, the recipient updates it causes and the webhook event it emits commit together
(a transactional outbox), and so do a report or an inbound message with theirs (an
inbound STOP/START with its suppression change and confirmation reply too).

Cancel invariant: a batch whose cancel was requested (``cancel_message`` found it in
flight) is never claimed again. ``claim_due`` skips it, and every operation that ends an
attempt without the MMSC's acceptance (``mark_retry``, ``requeue_in_flight``, ``release``)
ends it ``canceled`` instead of queueing it, with its recipients and webhook event.

A new backend implements this protocol, keeps its own migrations with the same version
numbers as SQLite's, and must enforce the recipient state machine of
``gateway.store.transitions`` inside those transactions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gateway.store.history import AttemptRow, MessageHistory, MessageQuery
    from gateway.store.records import (
        Batch,
        CancelPlan,
        InboundRow,
        MessageRecord,
        NewMessage,
        OutboxEvent,
        PartRef,
        ReplacePlan,
        ReportResult,
        ReportRow,
    )


class Store(Protocol):
    """Durable messages, recipients and submission batches (see the module docstring)."""

    #: True when other gateway instances may use the same store (a cluster): route rates
    #: then go through ``take_send_token`` and instances announce themselves.
    shared: bool

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def check_writable(self) -> None: ...

    async def create_message(self, new: NewMessage) -> tuple[MessageRecord, bool]: ...
    async def get_message(self, message_id: str) -> MessageRecord | None: ...
    async def find_idempotent(
        self, api_key: str, idempotency_key: str
    ) -> tuple[MessageRecord, str | None] | None: ...
    async def claim_due(self, route: str, now: float, limit: int) -> list[Batch]: ...
    async def next_due_at(self, route: str) -> float | None: ...
    async def queue_depths(self) -> dict[str, int]: ...
    async def requeue_in_flight(self, now: float) -> int: ...
    # ``attempt``: the SubmitReq exchange that caused the change, stored in its transaction.
    async def mark_submitted(
        self,
        batch_id: int,
        mm7_message_id: str | None,
        now: float,
        *,
        attempt: AttemptRow | None = None,
    ) -> bool: ...
    async def mark_failed(
        self,
        batch_id: int,
        state: str,
        error: str,
        now: float,
        *,
        attempt: AttemptRow | None = None,
    ) -> None: ...
    async def mark_retry(
        self,
        batch_id: int,
        next_at: float,
        error: str,
        now: float,
        *,
        count_attempt: bool = True,
        attempt: AttemptRow | None = None,
    ) -> bool: ...
    async def release(self, batch_ids: list[int], now: float) -> None: ...
    async def cancel_message(self, message_id: str, now: float) -> CancelPlan: ...
    async def clear_cancel_request(self, batch_id: int, now: float) -> None: ...
    async def cancel_not_possible(self, batch_id: int, now: float, why: str) -> None: ...
    async def pending_cancels(self, route: str) -> list[tuple[int, str, str]]: ...
    async def mark_batch_canceled(self, batch_id: int, now: float) -> None: ...
    async def replace_plan(self, message_id: str, *, hold_until: float) -> ReplacePlan: ...
    async def release_hold(self, held: list[tuple[int, float]]) -> None: ...
    async def replace_content(
        self,
        message_id: str,
        *,
        subject: str | None,
        text: str | None,
        parts: tuple[PartRef, ...],
        fallback: str | None,
        original_bytes: int,
        adapted_bytes: int,
        now: float,
    ) -> MessageRecord | None: ...

    # Reports, inbound messages and the opt-out list.
    async def store_report(self, report: ReportRow) -> ReportResult: ...
    async def report_counts(self) -> dict[str, int]: ...
    async def store_inbound(
        self,
        row: InboundRow,
        event: tuple[str, dict[str, Any]] | None,
        *,
        reply: NewMessage | None = None,
    ) -> tuple[str, bool]: ...
    async def get_inbound(self, inbound_id: str) -> dict[str, Any] | None: ...
    async def list_inbound(
        self, api_key: str, limit: int, before: str | None
    ) -> list[dict[str, Any]]: ...
    async def media_type_of(self, sha256: str) -> str | None: ...
    async def suppressed_numbers(self, pairs: list[tuple[str, str]]) -> list[str]: ...

    # The webhook outbox.
    async def sync_webhook_targets(self, targets: dict[str, str]) -> None: ...
    async def due_events(
        self, now: float, limit: int, busy_streams: tuple[str, ...]
    ) -> list[OutboxEvent]: ...
    async def next_event_at(self) -> float | None: ...
    async def finish_event(
        self, row_id: int, state: str, error: str | None, now: float
    ) -> None: ...
    async def retry_event(self, row_id: int, next_at: float, error: str, now: float) -> None: ...
    async def dead_letters(self, api_key: str | None, limit: int) -> list[dict[str, Any]]: ...
    async def outbox_counts(self) -> dict[str, int]: ...

    # Retention.
    async def purge_expired(self, cutoff: float, limit: int) -> dict[str, int]: ...
    async def media_in_use(self, digests: list[str], created_before: float) -> set[str]: ...

    # Several gateways on one store.
    async def heartbeat(self, instance_id: str, now: float) -> None: ...
    async def live_instances(self, since: float) -> int: ...
    async def take_send_token(self, route: str, rate: float, burst: float) -> float:
        """Take one of the route's cluster-wide tokens; seconds to wait when none is free."""
        ...

    # The operator console (gateway/console/).
    async def search_messages(self, query: MessageQuery) -> list[MessageRecord]: ...
    async def message_history(self, message_id: str) -> MessageHistory | None: ...
    async def recent_inbound(self, limit: int) -> list[dict[str, Any]]: ...
    async def replay_dead_letter(self, event_id: str, now: float) -> bool: ...
