"""The storage contract the rest of the gateway codes against.

``SqliteStore`` is the embedded implementation; a PostgreSQL backend implements the same
``Store`` protocol. Two levels:

* queue operations (``create_message`` ... ``mark_batch_canceled``): each a coroutine whose
  write side is durable when it returns;
* ``read``/``write``: run a function with a DB-API connection on the store's own thread
  (``write`` inside a transaction that commits before the coroutine returns). The
  callbacks package keeps its SQL in ``gateway/callbacks/sql.py`` and uses this; its SQL is
  portable (``INSERT ... ON CONFLICT``, ``RETURNING``, no SQLite functions) apart from the
  ``?`` placeholders, which a psycopg-based backend translates to ``%s``. The DDL in
  ``migrations.py`` is SQLite's: a PostgreSQL backend has its own migrations with the same
  version numbers (identity columns instead of ``AUTOINCREMENT``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    import sqlite3

    from gateway.store.records import Batch, MessageRecord, NewMessage, PartRef
    from gateway.store.sqlite import CancelPlan, ReplacePlan

T = TypeVar("T")


class Store(Protocol):
    """Durable messages, recipients and submission batches (see the module docstring)."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def check_writable(self) -> None: ...

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...
    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def create_message(self, new: NewMessage) -> tuple[MessageRecord, bool]: ...
    async def get_message(self, message_id: str) -> MessageRecord | None: ...
    async def find_idempotent(
        self, api_key: str, idempotency_key: str
    ) -> tuple[MessageRecord, str | None] | None: ...
    async def claim_due(self, route: str, now: float, limit: int) -> list[Batch]: ...
    async def next_due_at(self, route: str) -> float | None: ...
    async def queue_depths(self) -> dict[str, int]: ...
    async def requeue_in_flight(self, now: float) -> int: ...
    async def mark_submitted(
        self, batch_id: int, mm7_message_id: str | None, now: float
    ) -> bool: ...
    async def mark_failed(self, batch_id: int, state: str, error: str, now: float) -> None: ...
    async def mark_retry(
        self, batch_id: int, next_at: float, error: str, now: float, *, count_attempt: bool = True
    ) -> None: ...
    async def release(self, batch_ids: list[int], now: float) -> None: ...
    async def cancel_message(self, message_id: str, now: float) -> CancelPlan: ...
    async def clear_cancel_request(self, batch_id: int, now: float) -> None: ...
    async def pending_cancels(self, route: str) -> list[tuple[int, str, str]]: ...
    async def mark_batch_canceled(self, batch_id: int, now: float) -> None: ...
    async def replace_plan(self, message_id: str) -> ReplacePlan: ...
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
