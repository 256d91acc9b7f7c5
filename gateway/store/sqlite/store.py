"""SQLite implementation of the store: WAL mode, one worker thread, group commit.

Theory of operation: one thread owns the connection and runs every operation in order.
It takes all operations queued at that moment, runs them in one transaction and COMMITs
once for the whole group; only then are the callers' futures resolved. One failing
operation must not undo its neighbours: when a write fails, the group is rolled back and
run again with each write inside its own SAVEPOINT (the common case, where nothing
fails, saves those two statements per write). A ``202`` is therefore answered
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
from gateway.store.history import AttemptRow, MessageHistory, MessageQuery
from gateway.store.records import (
    Batch,
    CancelPlan,
    ConsentChange,
    ConsentRecord,
    InboundRow,
    MessageRecord,
    NewMessage,
    OutboxEvent,
    PartRef,
    ReplacePlan,
    ReportResult,
    ReportRow,
    ShortLink,
    SmsJob,
)
from gateway.store.sqlite import (
    events,
    history,
    inbound,
    pools,
    reports,
    retention,
    sms,
    suppressions,
)
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
from gateway.store.sqlite.migrations import migrate
from gateway.store.sqlite.parts import parts_to_json

T = TypeVar("T")
_MAX_GROUP: Final = 512
_STOP: Final = object()
#: Deadline of one store call, queueing included: far above a healthy group commit (ms),
#: short enough that a stuck store shows as errors instead of requests hanging forever.
CALL_TIMEOUT_SECONDS: Final = 30.0


class _BrokenConnection(Exception):  # noqa: N818 - a signal, not an error for callers
    """The connection could not be rolled back: reconnect before the next group."""

    def __init__(self, outcomes: list[tuple[_Op, Any, BaseException | None]] | None = None) -> None:
        super().__init__()
        #: What to answer the group's callers.
        self.outcomes = outcomes or []


class _Op:
    """One queued operation; ``future`` belongs to the caller's event loop.

    The store thread never touches the asyncio future directly (not thread-safe): it
    reports a whole group's outcomes with one ``call_soon_threadsafe`` (one loop wake-up per
    group commit, not one per operation).
    """

    __slots__ = ("durable", "fn", "future", "loop", "write")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], Any],
        write: bool,
        loop: asyncio.AbstractEventLoop,
        *,
        durable: bool = True,
    ) -> None:
        self.fn = fn
        self.write = write
        #: False: a write whose loss in a power failure is harmless (a claim), so a group
        #: of only such writes commits without waiting for fsync (see ``_run_group``).
        self.durable = durable
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

    #: One process per database file (see ``take_send_token``).
    shared = False

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "FULL",
        call_timeout: float = CALL_TIMEOUT_SECONDS,
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.call_timeout = call_timeout
        self._failure: str | None = None
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
        try:
            self._serve(conn)
        except BaseException as exc:
            # Whatever ended the thread, callers must not wait for it: record why (for
            # /healthz and every later call) and fail what is still queued.
            self._failure = f"store thread ended: {type(exc).__name__}: {exc}"[:300]
            self._fail_queued()
            if not isinstance(exc, Exception):
                raise
        finally:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()

    def _serve(self, conn: sqlite3.Connection) -> None:
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
                try:
                    self._run_group(conn, group)
                except _BrokenConnection:
                    # The rollback failed: the connection's state is unknown. Start afresh
                    # (a failure to reconnect ends the thread, reported as dead).
                    with contextlib.suppress(sqlite3.Error):
                        conn.close()
                    self._conn = None
                    conn = self._conn = self._connect()
                except BaseException as exc:
                    failure = StoreError(f"store thread failed: {type(exc).__name__}: {exc}")
                    _deliver([(op, None, failure) for op in group])
                    raise

    def _fail_queued(self) -> None:
        error = StoreError(self._failure or "store is closed")
        failed: list[tuple[_Op, Any, BaseException | None]] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Op):
                failed.append((item, None, error))
        _deliver(failed)

    def _run_group(self, conn: sqlite3.Connection, group: list[_Op]) -> None:
        writes = any(op.write for op in group)
        # A group of claims only: committed with synchronous=NORMAL, i.e. written to the
        # WAL without an fsync. A kill -9 cannot lose it (the bytes are in the OS's
        # cache); a power failure can, which only sends the batch again as if it had been
        # in flight at a crash. The WAL is synced in order, so the next durable commit
        # covers it too. This takes one fsync off the path from accept to SubmitReq.
        relaxed = self.synchronous.upper() in ("FULL", "EXTRA") and all(
            op.write and not op.durable for op in group
        )  # reads too stay out: none may observe the relaxed setting
        if relaxed:
            conn.execute("PRAGMA synchronous=NORMAL")
        broken: _BrokenConnection | None = None
        try:
            outcomes = self._commit_group(conn, group, writes=writes)
        except _BrokenConnection as exc:
            outcomes, broken = exc.outcomes, exc
        if relaxed and broken is None:
            try:
                conn.execute(f"PRAGMA synchronous={self.synchronous}")
            except sqlite3.Error as exc:
                # Durability must not silently stay relaxed: start a fresh connection.
                broken = _BrokenConnection()
                broken.__cause__ = exc
        # Answered only now: the next group (a caller's next call) runs fully durable.
        _deliver(outcomes)
        if broken is not None:
            raise broken

    def _commit_group(
        self, conn: sqlite3.Connection, group: list[_Op], *, writes: bool
    ) -> list[tuple[_Op, Any, BaseException | None]]:
        """Run and commit a group; each operation's outcome (all failed if the commit did).

        Raises:
            _BrokenConnection: the commit failed and so did the rollback (carrying the
                failed outcomes).
        """
        try:
            if writes:
                conn.execute("BEGIN IMMEDIATE")
            # Optimistic: no SAVEPOINT per operation (two statements each). If a write fails,
            # its partial changes are in the transaction: roll the whole group back and run
            # it again, this time with a SAVEPOINT around each write. Operations are plain
            # functions of the database, so running one twice gives the same outcome.
            results = self._run_ops(conn, group, savepoints=False)
            if results is None:
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                results = self._run_ops(conn, group, savepoints=True)
                assert results is not None  # noqa: S101 - with savepoints every outcome is kept
            if writes:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            # The commit itself failed: nothing of this group is durable.
            error = StoreError(f"database commit failed: {exc}")
            failed: list[tuple[_Op, Any, BaseException | None]] = [
                (op, None, error) for op in group
            ]
            # Roll back before answering: a caller that retries at once must not find the
            # failed transaction still open on this connection.
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error as rollback_failure:
                raise _BrokenConnection(failed) from rollback_failure
            return failed
        return results

    @staticmethod
    def _run_ops(
        conn: sqlite3.Connection, group: list[_Op], *, savepoints: bool
    ) -> list[tuple[_Op, Any, BaseException | None]] | None:
        """Run a group's operations in the open transaction; None when a write failed
        without ``savepoints`` (the transaction then holds its partial changes)."""
        results: list[tuple[_Op, Any, BaseException | None]] = []
        for op in group:
            # A caller cancelled while queued gets nothing run (reading ``cancelled()``
            # from this thread is a benign race: at worst a just-cancelled op still
            # runs, as a cancel after it started would).
            if op.future.cancelled():
                continue
            guarded = savepoints and op.write
            if guarded:
                conn.execute("SAVEPOINT op")
            try:
                value = op.fn(conn)
            except Exception as exc:
                if op.write and not savepoints:
                    return None
                if guarded:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                if isinstance(exc, sqlite3.Error):
                    # Callers catch the store's own error, never the driver's.
                    wrapped = StoreError(f"database error: {exc}")
                    wrapped.__cause__ = exc
                    exc = wrapped
                results.append((op, None, exc))
                continue
            if guarded:
                conn.execute("RELEASE op")
            results.append((op, value, None))
        return results

    def dead_reason(self) -> str | None:
        """None while the store thread runs operations, else why it does not (/healthz)."""
        if self._failure is not None:
            return self._failure
        if self._thread is not None and not self._thread.is_alive():
            return "store thread is not running"
        return None

    async def _submit(
        self, fn: Callable[[sqlite3.Connection], T], *, write: bool, durable: bool = True
    ) -> T:
        if self._thread is None:
            raise StoreError("store is not open")
        dead = self.dead_reason()
        if dead is not None:
            raise StoreError(dead)
        op = _Op(fn, write, asyncio.get_running_loop(), durable=durable)
        self._queue.put(op)
        try:
            # On timeout the future is cancelled: an operation still queued is then
            # skipped by the store thread; one already running may still commit.
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses the caller's
            # cancellation when the future completes at the same moment (the cancelled
            # task then runs on, and a stop() waiting for it hangs).
            async with asyncio.timeout(self.call_timeout):
                result: T = await op.future
        except TimeoutError:
            raise StoreError(
                self.dead_reason() or f"store call not done within {self.call_timeout:g} s"
            ) from None
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
        """Move up to ``limit`` due batches of ``route`` to in_flight and return them.

        Not fsynced on its own (``_Op.durable``): losing a claim to a power failure only
        leaves the batch queued, to be sent again, as crash recovery would anyway."""
        return await self._submit(
            lambda conn: claim_due(conn, route, now, limit), write=True, durable=False
        )

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
        self,
        row: InboundRow,
        event: tuple[str, dict[str, Any]] | None,
        *,
        reply: NewMessage | None = None,
    ) -> tuple[str, bool]:
        """Store an inbound MMS with its opt-out change, event and ``reply`` (an outbound
        message created in the same transaction, only when the inbound one is new)."""
        return await self.write(lambda conn: inbound.store_inbound(conn, row, event, reply))

    async def get_inbound(self, inbound_id: str) -> dict[str, Any] | None:
        return await self.read(lambda conn: inbound.get_inbound(conn, inbound_id))

    async def list_inbound(
        self, api_key: str, limit: int, before: str | None
    ) -> list[dict[str, Any]]:
        return await self.read(lambda conn: inbound.list_inbound(conn, api_key, limit, before))

    async def media_type_of(self, sha256: str) -> str | None:
        return await self.read(lambda conn: inbound.media_type_of(conn, sha256))

    async def suppressed_numbers(self, pairs: list[tuple[str, str]]) -> list[str]:
        return await self.read(lambda conn: suppressions.suppressed_numbers(conn, pairs))

    # -- sender pools and consent -----------------------------------------------------------
    async def set_consent(self, change: ConsentChange) -> ConsentRecord:
        def op(conn: sqlite3.Connection) -> ConsentRecord:
            pools.set_consent(conn, change)
            record = pools.get_consent(conn, change.pool, change.number)
            if record is None:  # pragma: no cover - same transaction
                raise StoreError("consent record vanished")
            return record

        return await self.write(op)

    async def get_consent(self, pool: str, number: str) -> ConsentRecord | None:
        return await self.read(lambda conn: pools.get_consent(conn, pool, number))

    async def sticky_senders(self, pool: str, numbers: list[str]) -> dict[str, str]:
        return await self.read(lambda conn: pools.sticky_senders(conn, pool, numbers))

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

    # -- retention -------------------------------------------------------------------------------
    async def purge_expired(self, cutoff: float, limit: int) -> dict[str, int]:
        """Delete up to ``limit`` rows of each kind older than ``cutoff`` (one transaction
        per kind, so a purge never holds the store for long); counts by kind."""
        steps = (
            ("messages", retention.purge_messages),
            ("inbound", retention.purge_inbound),
            ("events", retention.purge_events),
            ("reports", retention.purge_unmatched_reports),
        )
        counts = {}
        for kind, step in steps:
            counts[kind] = await self.write(
                lambda conn, step=step: step(conn, cutoff, limit)  # type: ignore[misc]
            )
        # Housekeeping, not retention: the daily cap only looks 24 h back (consent and its
        # history are evidence and are never purged).
        await self.write(lambda conn: pools.purge_pool_sends(conn, limit))
        return counts

    async def media_in_use(self, digests: list[str], created_before: float) -> set[str]:
        return await self.read(lambda conn: retention.media_in_use(conn, digests, created_before))

    # -- a cluster of one ------------------------------------------------------------------------
    # An SQLite file belongs to one process: the local token buckets are the route's, and
    # this instance is the only one.
    async def heartbeat(self, instance_id: str, now: float) -> None:  # noqa: ARG002 - Store API
        return None

    async def live_instances(self, since: float) -> int:  # noqa: ARG002 - Store API
        return 1

    async def take_send_token(self, route: str, rate: float, burst: float) -> float:  # noqa: ARG002 - Store API
        return 0.0

    # -- operator console ---------------------------------------------------------------------
    async def search_messages(self, query: MessageQuery) -> list[MessageRecord]:
        return await self.read(lambda conn: history.search_messages(conn, query))

    async def message_history(self, message_id: str) -> MessageHistory | None:
        return await self.read(lambda conn: history.message_history(conn, message_id))

    async def recent_inbound(self, limit: int) -> list[dict[str, Any]]:
        return await self.read(lambda conn: history.recent_inbound(conn, limit))

    async def replay_dead_letter(self, event_id: str, now: float) -> bool:
        return await self.write(lambda conn: history.replay_dead_letter(conn, event_id, now))

    # -- SMS fallback and short links (DESIGN.md §13) ----------------------------------------
    async def sync_sms_routes(self, causes: dict[str, tuple[str, ...]]) -> None:
        await self.write(lambda conn: sms.sync_routes(conn, causes))

    async def claim_sms(self, now: float, limit: int) -> list[SmsJob]:
        return await self.write(lambda conn: sms.claim(conn, now, limit))

    async def next_sms_at(self) -> float | None:
        return await self.read(sms.next_due)

    async def sms_sent(self, intent_id: int, segments: int, coding: str, now: float) -> None:
        await self.write(lambda conn: sms.sent(conn, intent_id, segments, coding, now))

    async def sms_retry(self, intent_id: int, next_at: float, error: str, now: float) -> None:
        await self.write(lambda conn: sms.retry(conn, intent_id, next_at, error, now))

    async def sms_failed(self, intent_id: int, error: str, now: float) -> None:
        await self.write(lambda conn: sms.give_up(conn, intent_id, error, now))

    async def requeue_sms_sending(self, due: float, now: float) -> int:
        return await self.write(lambda conn: sms.requeue_sending(conn, due, now))

    async def sms_report(self, intent_id: int, dlr_type: int, now: float) -> str:
        return await self.write(lambda conn: sms.apply_dlr(conn, intent_id, dlr_type, now))

    async def short_link(self, message_id: str, code: str, expires_at: float, now: float) -> str:
        return await self.write(
            lambda conn: sms.short_link(conn, message_id, code, expires_at, now)
        )

    async def resolve_short_link(self, code: str, now: float) -> ShortLink | None:
        return await self.read(lambda conn: sms.resolve(conn, code, now))
