"""The message and batch operations of the ``Store`` protocol over SQL connections.

``BatchOperations`` (with ``SqlOperations``, ``operations.py``) implements each operation
as a function of one connection, run as one transaction by ``read``/``write``, which a
backend provides: ``SqliteStore`` on its group-commit thread, ``PostgresStore`` on a
pooled connection (the SQL of this package is written in the subset both dialects
share; ``gateway/store/postgresql/connection.py`` adapts the placeholders).
"""

from __future__ import annotations

import abc
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from gateway.store.history import AttemptRow
from gateway.store.records import (
    Batch,
    CancelPlan,
    MessageRecord,
    NewMessage,
    PartRef,
    ReplacePlan,
)
from gateway.store.sqlite import history
from gateway.store.sqlite.locks import lock_message
from gateway.store.sqlite.messages import (
    cancel_message,
    cancel_not_possible,
    claim_due,
    create_message,
    finish_batch,
    load_message,
    release,
    requeue_in_flight,
    retry_batch,
)
from gateway.store.sqlite.parts import parts_to_json

T = TypeVar("T")


class BatchOperations(abc.ABC):
    """Messages, recipients and submission batches (the outbound half of ``Store``)."""

    @abc.abstractmethod
    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a read-only transaction."""

    @abc.abstractmethod
    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a transaction, durable when this returns."""

    async def check_writable(self) -> None:
        """Prove the database accepts a write (for readiness checks)."""

        def op(conn: sqlite3.Connection) -> None:
            conn.execute("CREATE TABLE IF NOT EXISTS healthcheck (id INTEGER PRIMARY KEY, at REAL)")
            conn.execute(
                "INSERT INTO healthcheck (id, at) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                (time.time(),),
            )

        await self.write(op)

    # -- messages ---------------------------------------------------------------------------
    async def create_message(self, new: NewMessage) -> tuple[MessageRecord, bool]:
        """Store a new message and its batches; returns (record, created).

        With an idempotency key already used by this API key: the same request returns
        the stored message (created=False); a different request raises IdempotencyConflict.
        """
        return await self.write(lambda conn: create_message(conn, new))

    async def get_message(self, message_id: str) -> MessageRecord | None:
        return await self.read(lambda conn: load_message(conn, message_id))

    async def claim_due(
        self, route: str, now: float, limit: int, *, max_in_flight: int | None = None
    ) -> list[Batch]:
        """Move up to ``limit`` due batches of ``route`` to in_flight and return them,
        never more than ``max_in_flight`` of the route in flight at once."""
        return await self.write(lambda conn: claim_due(conn, route, now, limit, max_in_flight))

    async def next_due_at(self, route: str) -> float | None:
        def op(conn: sqlite3.Connection) -> float | None:
            row = conn.execute(
                "SELECT MIN(next_attempt_at) FROM batches WHERE route = ? AND state = 'queued' "
                "AND cancel_requested = 0",
                (route,),
            ).fetchone()
            return float(row[0]) if row and row[0] is not None else None

        return await self.read(op)

    async def queue_depths(self) -> dict[str, int]:
        def op(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute(
                "SELECT route, COUNT(*) FROM batches WHERE state IN ('queued', 'in_flight') "
                "GROUP BY route"
            ).fetchall()
            return {str(route): int(count) for route, count in rows}

        return await self.read(op)

    async def requeue_in_flight(self, now: float) -> int:
        """Crash recovery: batches left in_flight by a previous run become due again, except
        those whose cancel was requested meanwhile: they end canceled."""
        return await self.write(lambda conn: requeue_in_flight(conn, now))

    async def mark_submitted(
        self,
        batch_id: int,
        mm7_message_id: str | None,
        now: float,
        *,
        attempt: AttemptRow | None = None,
    ) -> bool:
        """Record a successful SubmitRsp; True when a cancel was requested meanwhile."""

        def op(conn: sqlite3.Connection) -> bool:
            history.record_attempt(conn, attempt)
            return finish_batch(conn, batch_id, "submitted", "submitted", None, now, mm7_message_id)

        return await self.write(op)

    async def pending_cancels(self, route: str) -> list[tuple[int, str, str]]:
        """Submitted batches of ``route`` whose cancel was requested but not yet done.

        ``(batch_id, message_id, mm7_message_id)``: left by a cancel of an in-flight batch
        whose CancelReq had not succeeded when the gateway stopped.
        """

        def op(conn: sqlite3.Connection) -> list[tuple[int, str, str]]:
            rows = conn.execute(
                "SELECT id, message_id, mm7_message_id FROM batches WHERE route = ? "
                "AND state = 'submitted' AND cancel_requested = 1 AND mm7_message_id IS NOT NULL",
                (route,),
            ).fetchall()
            return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

        return await self.read(op)

    async def mark_failed(
        self,
        batch_id: int,
        state: str,
        error: str,
        now: float,
        *,
        attempt: AttemptRow | None = None,
    ) -> None:
        """Give up on a batch: ``state`` is failed, rejected or expired."""

        def op(conn: sqlite3.Connection) -> None:
            history.record_attempt(conn, attempt)
            finish_batch(conn, batch_id, state, state, error, now, None)

        await self.write(op)

    async def mark_retry(
        self,
        batch_id: int,
        next_at: float,
        error: str,
        now: float,
        *,
        count_attempt: bool = True,
        attempt: AttemptRow | None = None,
    ) -> bool:
        """Queue a batch again; ``count_attempt=False`` (a slow-down answer) gives back the
        attempt its claim took, so flow control never uses up ``max_attempts``.

        Returns True when the batch's cancel was requested while it was in flight: it then
        ends ``canceled`` (recipients, message status, webhook) instead of being queued.
        """
        refund = 0 if count_attempt else 1

        def op(conn: sqlite3.Connection) -> bool:
            history.record_attempt(conn, attempt)
            return retry_batch(conn, batch_id, next_at, error, refund, now)

        return await self.write(op)

    async def release(self, batch_ids: list[int], now: float) -> None:
        """Shutdown: hand claimed-but-unsent batches back to the queue (flagged for cancel:
        canceled instead)."""
        await self.write(lambda conn: release(conn, batch_ids, now))

    async def cancel_message(self, message_id: str, now: float) -> CancelPlan:
        """Cancel what has not been sent; flag the rest for a CancelReq (see CancelPlan)."""
        return await self.write(lambda conn: cancel_message(conn, message_id, now))

    async def clear_cancel_request(self, batch_id: int, now: float) -> None:
        """The MMSC refused the CancelReq (e.g. already delivered): stop asking."""
        await self.write(
            lambda conn: conn.execute(
                "UPDATE batches SET cancel_requested = 0, updated_at = ? WHERE id = ?",
                (now, batch_id),
            )
        )

    async def cancel_not_possible(self, batch_id: int, now: float, why: str) -> None:
        """A requested cancel cannot be done: stop asking, and say why on the recipients."""
        await self.write(lambda conn: cancel_not_possible(conn, batch_id, now, why))

    async def replace_plan(self, message_id: str, *, hold_until: float) -> ReplacePlan:
        """Where a message's batches stand, for a content replacement.

        Unless one is in flight, the queued batches are also held (not due before
        ``hold_until``) in the same transaction, so no worker sends the old content while
        the replacement is under way; :meth:`release_hold` puts their due times back. A
        crash in between only delays them until ``hold_until``.
        """

        def op(conn: sqlite3.Connection) -> ReplacePlan:
            lock_message(conn, message_id)
            states: dict[str, int] = {}
            for state, count in conn.execute(
                "SELECT state, COUNT(*) FROM batches WHERE message_id = ? GROUP BY state",
                (message_id,),
            ):
                states[str(state)] = int(count)
            submitted = [
                (int(r[0]), str(r[1]), str(r[2]))
                for r in conn.execute(
                    "SELECT id, route, mm7_message_id FROM batches WHERE message_id = ? "
                    "AND state = 'submitted' AND mm7_message_id IS NOT NULL AND EXISTS ("
                    "SELECT 1 FROM recipients r WHERE r.batch_id = batches.id "
                    "AND r.status IN ('submitted', 'rejected'))",
                    (message_id,),
                )
            ]
            routes = tuple(
                str(r[0])
                for r in conn.execute(
                    "SELECT DISTINCT route FROM batches WHERE message_id = ? ORDER BY route",
                    (message_id,),
                )
            )
            held: list[tuple[int, float]] = []
            if not states.get("in_flight"):
                held = [
                    (int(r[0]), float(r[1]))
                    for r in conn.execute(
                        "SELECT id, next_attempt_at FROM batches "
                        "WHERE message_id = ? AND state = 'queued'",
                        (message_id,),
                    )
                ]
                conn.executemany(
                    "UPDATE batches SET next_attempt_at = ? WHERE id = ? AND state = 'queued'",
                    [(max(due, hold_until), batch_id) for batch_id, due in held],
                )
            return ReplacePlan(
                queued=states.get("queued", 0),
                in_flight=states.get("in_flight", 0),
                submitted=submitted,
                routes=routes,
                held=held,
            )

        return await self.write(op)

    async def release_hold(self, held: list[tuple[int, float]]) -> None:
        """Give held batches their due times back (see :meth:`replace_plan`)."""
        if not held:
            return
        await self.write(
            lambda conn: conn.executemany(
                "UPDATE batches SET next_attempt_at = ? WHERE id = ? AND state = 'queued'",
                [(due, batch_id) for batch_id, due in held],
            )
        )

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
    ) -> MessageRecord | None:
        """Store a message's new content (what queued batches will send, and what a
        successful ReplaceReq put at the MMSC)."""

        def op(conn: sqlite3.Connection) -> MessageRecord | None:
            conn.execute(
                "UPDATE messages SET subject = ?, body_text = ?, parts_json = ?, fallback = ?, "
                "original_bytes = ?, adapted_bytes = ?, updated_at = ? WHERE id = ?",
                (
                    subject, text, parts_to_json(parts), fallback, original_bytes,
                    adapted_bytes, now, message_id,
                ),
            )  # fmt: skip
            return load_message(conn, message_id)

        return await self.write(op)

    async def find_idempotent(
        self, api_key: str, idempotency_key: str
    ) -> tuple[MessageRecord, str | None] | None:
        """The message stored under this key (and its request hash), if any."""

        def op(conn: sqlite3.Connection) -> tuple[MessageRecord, str | None] | None:
            row = conn.execute(
                "SELECT id, request_hash FROM messages WHERE api_key = ? AND idempotency_key = ?",
                (api_key, idempotency_key),
            ).fetchone()
            if row is None:
                return None
            record = load_message(conn, row[0])
            return None if record is None else (record, row[1])

        return await self.read(op)

    async def mark_batch_canceled(self, batch_id: int, now: float) -> None:
        await self.write(
            lambda conn: finish_batch(conn, batch_id, "canceled", "canceled", None, now, None)
        )
