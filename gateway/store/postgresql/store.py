"""PostgreSQL implementation of the store, for several gateway instances sharing one
database (DESIGN section 11).

Theory of operation: every operation is a plain function over one pooled connection and
runs as one transaction (committed before the caller's coroutine returns) on a thread of
the store's own executor, as many at once as the pool has connections. Cross-instance
races are settled in the database: claims use ``FOR UPDATE SKIP LOCKED`` and leases,
changes to one message take its row lock, and a report and the SubmitRsp naming the same
MM7 MessageID take an advisory lock (see ``connection.py``). A deadlock or a unique
violation between two instances rolls the operation back and it runs again.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool

from gateway.errors import StoreError
from gateway.store.postgresql import events, inbound, messages, reports
from gateway.store.postgresql.connection import Conn, executemany
from gateway.store.postgresql.media import PostgresMediaStore
from gateway.store.postgresql.migrations import migrate
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
from gateway.store.rows import parts_to_json

T = TypeVar("T")
#: Conflicts another instance's concurrent transaction can cause; running again settles them.
_TRANSIENT: Final = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
    psycopg.errors.UniqueViolation,
)
_ATTEMPTS: Final = 4


class PostgresStore:
    """The shared store: one PostgreSQL database for every instance of a gateway."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        instance_id: str = "gateway",
        lease_seconds: float = 30.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.pool_size = pool_size
        self.instance_id = instance_id
        self.lease_seconds = lease_seconds
        self.connect_timeout = connect_timeout
        self.schema_version = 0
        self._pool: ConnectionPool[Conn] | None = None
        self._executor: ThreadPoolExecutor | None = None

    # -- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(self.pool_size, thread_name_prefix="pg-store")
        try:
            await self._in_thread(self._open_sync)
        except BaseException:
            await self.close()
            raise

    def _open_sync(self) -> None:
        timeout = max(1, int(self.connect_timeout))
        try:
            # Migrate over a connection of its own first: an unreachable server fails here
            # at once, where the pool would keep retrying until its timeout.
            with psycopg.connect(self.url, connect_timeout=timeout) as conn:
                self.schema_version = migrate(conn)
        except (psycopg.Error, StoreError) as exc:
            raise StoreError(f"cannot open database: {_redacted(exc)}") from exc
        pool: ConnectionPool[Conn] = ConnectionPool(
            self.url,
            min_size=1,
            max_size=self.pool_size,
            open=False,
            timeout=self.connect_timeout,
            kwargs={"connect_timeout": timeout},
            name="mm7gw-store",
        )
        try:
            pool.open(wait=True, timeout=self.connect_timeout)
        except psycopg.Error as exc:
            pool.close()
            raise StoreError(f"cannot open database: {_redacted(exc)}") from exc
        self._pool = pool

    async def close(self) -> None:
        pool, executor = self._pool, self._executor
        self._pool = self._executor = None
        if pool is not None:
            await asyncio.to_thread(pool.close)
        if executor is not None:
            executor.shutdown(wait=False)

    async def _in_thread(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise StoreError("store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def run_sync(self, fn: Callable[[Conn], T]) -> T:
        """Run ``fn`` as one transaction, again after a transient conflict."""
        pool = self._pool
        if pool is None:
            raise StoreError("store is not open")
        for attempt in range(_ATTEMPTS):
            try:
                with pool.connection() as conn:  # commits on return, rolls back on raise
                    return fn(conn)
            except _TRANSIENT:
                if attempt + 1 == _ATTEMPTS:
                    raise StoreError("database conflict persisted") from None
            except psycopg.Error as exc:
                # Callers catch the store's own error, never the driver's.
                raise StoreError(f"database error: {_redacted(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def run(self, fn: Callable[[Conn], T]) -> T:
        return await self._in_thread(functools.partial(self.run_sync, fn))

    def media(self) -> PostgresMediaStore:
        """The media store kept in this database (shared by every instance)."""
        return PostgresMediaStore(self)

    async def check_writable(self) -> None:
        await self.run(
            lambda conn: conn.execute(
                "INSERT INTO healthcheck (id, at) VALUES (1, %s) "
                "ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at",
                (time.time(),),
            )
        )

    # -- messages ---------------------------------------------------------------------------
    async def create_message(self, new: NewMessage) -> tuple[MessageRecord, bool]:
        return await self.run(lambda conn: messages.create_message(conn, new))

    async def get_message(self, message_id: str) -> MessageRecord | None:
        return await self.run(lambda conn: messages.load_message(conn, message_id))

    async def find_idempotent(
        self, api_key: str, idempotency_key: str
    ) -> tuple[MessageRecord, str | None] | None:
        return await self.run(
            lambda conn: messages.find_idempotent(conn, api_key, idempotency_key)
        )

    async def claim_due(self, route: str, now: float, limit: int) -> list[Batch]:
        """Claim up to ``limit`` due batches of ``route`` under a lease of this instance."""
        lease_until = now + self.lease_seconds
        return await self.run(
            lambda conn: messages.claim_due(
                conn, route, now, limit, self.instance_id, lease_until
            )
        )

    async def next_due_at(self, route: str) -> float | None:
        def op(conn: Conn) -> float | None:
            row = conn.execute(
                "SELECT MIN(next_attempt_at) FROM batches WHERE route = %s AND state = 'queued' "
                "AND cancel_requested = 0",
                (route,),
            ).fetchone()
            return float(row[0]) if row and row[0] is not None else None

        return await self.run(op)

    async def queue_depths(self) -> dict[str, int]:
        def op(conn: Conn) -> dict[str, int]:
            rows = conn.execute(
                "SELECT route, COUNT(*) FROM batches WHERE state IN ('queued', 'in_flight') "
                "GROUP BY route"
            ).fetchall()
            return {str(route): int(count) for route, count in rows}

        return await self.run(op)

    async def requeue_in_flight(self, now: float) -> int:
        """Crash recovery: in-flight batches whose lease ran out (never a live peer's)."""
        return await self.run(lambda conn: messages.requeue_expired(conn, now))

    async def mark_submitted(self, batch_id: int, mm7_message_id: str | None, now: float) -> bool:
        return await self.run(
            lambda conn: messages.finish_batch(
                conn, batch_id, "submitted", "submitted", None, now, mm7_message_id
            )
        )

    async def mark_failed(self, batch_id: int, state: str, error: str, now: float) -> None:
        await self.run(
            lambda conn: messages.finish_batch(conn, batch_id, state, state, error, now, None)
        )

    async def mark_retry(
        self, batch_id: int, next_at: float, error: str, now: float, *, count_attempt: bool = True
    ) -> None:
        refund = 0 if count_attempt else 1

        def op(conn: Conn) -> None:
            messages.requeue_own(
                conn, [batch_id], self.instance_id, now, next_at, error, refund
            )
            conn.execute(
                "UPDATE messages SET last_error = %s, updated_at = %s WHERE id = "
                "(SELECT message_id FROM batches WHERE id = %s)",
                (error, now, batch_id),
            )

        await self.run(op)

    async def release(self, batch_ids: list[int], now: float) -> None:
        await self.run(
            lambda conn: messages.requeue_own(
                conn, batch_ids, self.instance_id, now, None, None, 0
            )
        )

    async def cancel_message(self, message_id: str, now: float) -> CancelPlan:
        return await self.run(lambda conn: messages.cancel_message(conn, message_id, now))

    async def clear_cancel_request(self, batch_id: int, now: float) -> None:
        await self.run(
            lambda conn: conn.execute(
                "UPDATE batches SET cancel_requested = 0, updated_at = %s WHERE id = %s",
                (now, batch_id),
            )
        )

    async def pending_cancels(self, route: str) -> list[tuple[int, str, str]]:
        def op(conn: Conn) -> list[tuple[int, str, str]]:
            rows = conn.execute(
                "SELECT id, message_id, mm7_message_id FROM batches WHERE route = %s "
                "AND state = 'submitted' AND cancel_requested = 1 "
                "AND mm7_message_id IS NOT NULL ORDER BY id",
                (route,),
            ).fetchall()
            return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

        return await self.run(op)

    async def mark_batch_canceled(self, batch_id: int, now: float) -> None:
        await self.run(
            lambda conn: messages.finish_batch(
                conn, batch_id, "canceled", "canceled", None, now, None
            )
        )

    async def replace_plan(self, message_id: str, *, hold_until: float) -> ReplacePlan:
        return await self.run(lambda conn: messages.replace_plan(conn, message_id, hold_until))

    async def release_hold(self, held: list[tuple[int, float]]) -> None:
        if not held:
            return
        await self.run(
            lambda conn: executemany(
                conn,
                "UPDATE batches SET next_attempt_at = %s WHERE id = %s AND state = 'queued'",
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
        def op(conn: Conn) -> MessageRecord | None:
            conn.execute(
                "UPDATE messages SET subject = %s, body_text = %s, parts_json = %s, "
                "fallback = %s, original_bytes = %s, adapted_bytes = %s, updated_at = %s "
                "WHERE id = %s",
                (subject, text, parts_to_json(parts), fallback, original_bytes, adapted_bytes,
                 now, message_id),
            )  # fmt: skip
            return messages.load_message(conn, message_id)

        return await self.run(op)

    # -- reports, inbound messages, opt-outs --------------------------------------------------
    async def store_report(self, report: ReportRow) -> ReportResult:
        return await self.run(lambda conn: reports.store_report(conn, report))

    async def report_counts(self) -> dict[str, int]:
        return await self.run(reports.report_counts)

    async def store_inbound(
        self, row: InboundRow, event: tuple[str, dict[str, Any]] | None
    ) -> tuple[str, bool]:
        return await self.run(lambda conn: inbound.store_inbound(conn, row, event))

    async def get_inbound(self, inbound_id: str) -> dict[str, Any] | None:
        return await self.run(lambda conn: inbound.get_inbound(conn, inbound_id))

    async def list_inbound(
        self, api_key: str, limit: int, before: str | None
    ) -> list[dict[str, Any]]:
        return await self.run(lambda conn: inbound.list_inbound(conn, api_key, limit, before))

    async def media_type_of(self, sha256: str) -> str | None:
        return await self.run(lambda conn: inbound.media_type_of(conn, sha256))

    async def suppressed_numbers(self, pairs: list[tuple[str, str]]) -> list[str]:
        return await self.run(lambda conn: inbound.suppressed_numbers(conn, pairs))

    # -- webhook outbox -------------------------------------------------------------------------
    async def sync_webhook_targets(self, targets: dict[str, str]) -> None:
        await self.run(lambda conn: events.sync_webhook_targets(conn, targets))

    async def due_events(
        self, now: float, limit: int, busy_streams: tuple[str, ...]
    ) -> list[OutboxEvent]:
        lease_until = now + self.lease_seconds
        return await self.run(
            lambda conn: events.due_events(
                conn, now, limit, busy_streams, self.instance_id, lease_until
            )
        )

    async def next_event_at(self) -> float | None:
        return await self.run(events.next_event_at)

    async def finish_event(self, row_id: int, state: str, error: str | None, now: float) -> None:
        await self.run(lambda conn: events.finish_event(conn, row_id, state, error, now))

    async def retry_event(self, row_id: int, next_at: float, error: str, now: float) -> None:
        await self.run(lambda conn: events.retry_event(conn, row_id, next_at, error, now))

    async def dead_letters(self, api_key: str | None, limit: int) -> list[dict[str, Any]]:
        return await self.run(lambda conn: events.dead_letters(conn, api_key, limit))

    async def outbox_counts(self) -> dict[str, int]:
        return await self.run(events.outbox_counts)


def _redacted(exc: BaseException) -> str:
    """The driver's message, first line only (no connection strings with passwords)."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
