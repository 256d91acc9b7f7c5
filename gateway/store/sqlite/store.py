"""SQLite implementation of the store: WAL mode, one worker thread, group commit.

Theory of operation: one thread owns the connection and runs every operation in order.
It takes all operations queued at that moment, runs each write inside its own SAVEPOINT
(so one failing operation does not undo its neighbours) and COMMITs once for the whole
group; only then are the callers' futures resolved. A ``202`` is therefore answered
after a durable commit, while many concurrent requests share one fsync.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Final, TypeVar

from gateway.errors import StoreError
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
from gateway.store.sqlite import events, inbound, reports
from gateway.store.sqlite.messages import (
    cancel_message,
    claim_due,
    create_message,
    finish_batch,
    load_message,
)
from gateway.store.sqlite.migrations import migrate

T = TypeVar("T")
_MAX_GROUP: Final = 512
_STOP: Final = object()


class _Op:
    """One queued operation; ``future`` belongs to the caller's event loop.

    The store thread never touches the asyncio future directly (not thread-safe): it
    reports a whole group's outcomes with one ``call_soon_threadsafe`` (one loop wake-up per
    group commit, not one per operation).
    """

    __slots__ = ("fn", "future", "loop", "write")

    def __init__(
        self, fn: Callable[[sqlite3.Connection], Any], write: bool, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.fn = fn
        self.write = write
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()


def _settle(outcomes: list[tuple[_Op, Any, BaseException | None]]) -> None:
    """On the event loop: hand each operation's outcome to its caller."""
    for op, value, failure in outcomes:
        if op.future.done():  # the caller was cancelled meanwhile
            continue
        if failure is not None:
            op.future.set_exception(failure)
        else:
            op.future.set_result(value)


def _deliver(outcomes: list[tuple[_Op, Any, BaseException | None]]) -> None:
    """From the store thread: schedule :func:`_settle` once per event loop involved."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Op, Any, BaseException | None]]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting
            loop.call_soon_threadsafe(_settle, items)


class SqliteStore:
    """The embedded store: a SQLite database file under ``data_dir``."""

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self.path = path
        self.synchronous = synchronous
        self._queue: queue.SimpleQueue[_Op | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self.schema_version = 0

    # -- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="sqlite-store", daemon=True
        )
        self._thread.start()
        await asyncio.wrap_future(ready)

    async def close(self) -> None:
        if self._thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _run(self, ready: Future[None]) -> None:
        try:
            conn = self._connect()
            self.schema_version = migrate(conn)
        except (sqlite3.Error, StoreError, OSError) as exc:
            ready.set_exception(StoreError(f"cannot open database {self.path}: {exc}"))
            return
        self._conn = conn
        ready.set_result(None)
        stopping = False
        while not stopping:
            group: list[_Op] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                    break
                assert isinstance(item, _Op)  # noqa: S101 - the queue holds only ops and _STOP
                group.append(item)
                if len(group) >= _MAX_GROUP:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if group:
                self._run_group(conn, group)
        conn.close()

    def _run_group(self, conn: sqlite3.Connection, group: list[_Op]) -> None:
        results: list[tuple[_Op, Any, BaseException | None]] = []
        writes = [op for op in group if op.write]
        try:
            if writes:
                conn.execute("BEGIN IMMEDIATE")
            for op in group:
                # A caller cancelled while queued gets nothing run (reading ``cancelled()``
                # from this thread is a benign race: at worst a just-cancelled op still
                # runs, as a cancel after it started would).
                if op.future.cancelled():
                    continue
                if op.write:
                    conn.execute("SAVEPOINT op")
                try:
                    value = op.fn(conn)
                except Exception as exc:
                    if op.write:
                        conn.execute("ROLLBACK TO op")
                        conn.execute("RELEASE op")
                    if isinstance(exc, sqlite3.Error):
                        # Callers catch the store's own error, never the driver's.
                        wrapped = StoreError(f"database error: {exc}")
                        wrapped.__cause__ = exc
                        exc = wrapped
                    results.append((op, None, exc))
                    continue
                if op.write:
                    conn.execute("RELEASE op")
                results.append((op, value, None))
            if writes:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            # The commit itself failed: nothing of this group is durable.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = StoreError(f"database commit failed: {exc}")
            _deliver([(op, None, error) for op in group])
            return
        _deliver(results)

    async def _submit(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        if self._thread is None:
            raise StoreError("store is not open")
        op = _Op(fn, write, asyncio.get_running_loop())
        self._queue.put(op)
        result: T = await op.future
        return result

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._submit(fn, write=False)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._submit(fn, write=True)

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

    async def claim_due(self, route: str, now: float, limit: int) -> list[Batch]:
        """Move up to ``limit`` due batches of ``route`` to in_flight and return them."""
        return await self.write(lambda conn: claim_due(conn, route, now, limit))

    async def next_due_at(self, route: str) -> float | None:
        def op(conn: sqlite3.Connection) -> float | None:
            row = conn.execute(
                "SELECT MIN(next_attempt_at) FROM batches WHERE route = ? AND state = 'queued'",
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
        """Crash recovery: batches left in_flight by a previous run become due again."""

        def op(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "UPDATE batches SET state = 'queued', next_attempt_at = ?, updated_at = ? "
                "WHERE state = 'in_flight'",
                (now, now),
            )
            return cur.rowcount

        return await self.write(op)

    async def mark_submitted(self, batch_id: int, mm7_message_id: str | None, now: float) -> bool:
        """Record a successful SubmitRsp; True when a cancel was requested meanwhile."""

        return await self.write(
            lambda conn: finish_batch(
                conn, batch_id, "submitted", "submitted", None, now, mm7_message_id
            )
        )

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

    async def mark_failed(self, batch_id: int, state: str, error: str, now: float) -> None:
        """Give up on a batch: ``state`` is failed, rejected or expired."""
        await self.write(lambda conn: finish_batch(conn, batch_id, state, state, error, now, None))

    async def mark_retry(
        self, batch_id: int, next_at: float, error: str, now: float, *, count_attempt: bool = True
    ) -> None:
        """Queue a batch again; ``count_attempt=False`` (a slow-down answer) gives back the
        attempt its claim took, so flow control never uses up ``max_attempts``."""
        refund = 0 if count_attempt else 1

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE batches SET state = 'queued', next_attempt_at = ?, last_error = ?, "
                "attempts = attempts - ?, updated_at = ? WHERE id = ? AND state = 'in_flight'",
                (next_at, error, refund, now, batch_id),
            )
            conn.execute(
                "UPDATE messages SET last_error = ?, updated_at = ? WHERE id = "
                "(SELECT message_id FROM batches WHERE id = ?)",
                (error, now, batch_id),
            )

        await self.write(op)

    async def release(self, batch_ids: list[int], now: float) -> None:
        """Shutdown: hand claimed-but-unsent batches back to the queue."""

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE batches SET state = 'queued', updated_at = ? "
                "WHERE id = ? AND state = 'in_flight'",
                [(now, batch_id) for batch_id in batch_ids],
            )

        await self.write(op)

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

    async def replace_plan(self, message_id: str, *, hold_until: float) -> ReplacePlan:
        """Where a message's batches stand, for a content replacement.

        Unless one is in flight, the queued batches are also held (not due before
        ``hold_until``) in the same transaction, so no worker sends the old content while
        the replacement is under way; :meth:`release_hold` puts their due times back. A
        crash in between only delays them until ``hold_until``.
        """

        def op(conn: sqlite3.Connection) -> ReplacePlan:
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


# -- SQL operations (run on the store thread) -------------------------------------------------

    # -- reports, inbound messages, opt-outs ----------------------------------------------------
    async def store_report(self, report: ReportRow) -> ReportResult:
        return await self.write(lambda conn: reports.store_report(conn, report))

    async def report_counts(self) -> dict[str, int]:
        return await self.read(reports.report_counts)

    async def store_inbound(
        self, row: InboundRow, event: tuple[str, dict[str, Any]] | None
    ) -> tuple[str, bool]:
        return await self.write(lambda conn: inbound.store_inbound(conn, row, event))

    async def get_inbound(self, inbound_id: str) -> dict[str, Any] | None:
        return await self.read(lambda conn: inbound.get_inbound(conn, inbound_id))

    async def list_inbound(
        self, api_key: str, limit: int, before: str | None
    ) -> list[dict[str, Any]]:
        return await self.read(lambda conn: inbound.list_inbound(conn, api_key, limit, before))

    async def media_type_of(self, sha256: str) -> str | None:
        return await self.read(lambda conn: inbound.media_type_of(conn, sha256))

    async def suppressed_numbers(self, pairs: list[tuple[str, str]]) -> list[str]:
        return await self.read(lambda conn: inbound.suppressed_numbers(conn, pairs))

    # -- webhook outbox ---------------------------------------------------------------------------
    async def sync_webhook_targets(self, targets: dict[str, str]) -> None:
        await self.write(lambda conn: events.sync_webhook_targets(conn, targets))

    async def due_events(
        self, now: float, limit: int, busy_streams: tuple[str, ...]
    ) -> list[OutboxEvent]:
        return await self.read(lambda conn: events.due_events(conn, now, limit, busy_streams))

    async def next_event_at(self) -> float | None:
        return await self.read(events.next_event_at)

    async def finish_event(self, row_id: int, state: str, error: str | None, now: float) -> None:
        await self.write(lambda conn: events.finish_event(conn, row_id, state, error, now))

    async def retry_event(self, row_id: int, next_at: float, error: str, now: float) -> None:
        await self.write(lambda conn: events.retry_event(conn, row_id, next_at, error, now))

    async def dead_letters(self, api_key: str | None, limit: int) -> list[dict[str, Any]]:
        return await self.read(lambda conn: events.dead_letters(conn, api_key, limit))

    async def outbox_counts(self) -> dict[str, int]:
        return await self.read(events.outbox_counts)
