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
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Final, TypeVar

from gateway.errors import StoreError
from gateway.store.records import Batch
from gateway.store.sqlite.messages import claim_due
from gateway.store.sqlite.migrations import migrate
from gateway.store.sqlite.operations import SqlOperations

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


class SqliteStore(SqlOperations):
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
            # A caller cancelled or timed out while queued gets nothing run (reading
            # ``done()`` from this thread is a benign race: at worst a just-cancelled op
            # still runs, as a cancel after it started would).
            if op.future.done():
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
        loop = asyncio.get_running_loop()
        op = _Op(fn, write, loop, durable=durable)
        self._queue.put(op)
        # On timeout the future fails with a StoreError: an operation still queued is then
        # skipped by the store thread; one already running may still commit. A timer on
        # the future, not asyncio.timeout (a few percent of the CPU per message, for three
        # store calls a message) nor wait_for (on Python 3.11 it loses the caller's
        # cancellation when the future completes at the same moment): the caller awaits
        # the future itself, so its cancellation always wins.
        timer = loop.call_at(loop.time() + self.call_timeout, self._expire, op.future)
        try:
            result: T = await op.future
        finally:
            timer.cancel()
        return result

    def _expire(self, future: asyncio.Future[Any]) -> None:
        if not future.done():
            future.set_exception(
                StoreError(
                    self.dead_reason() or f"store call not done within {self.call_timeout:g} s"
                )
            )

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._submit(fn, write=False)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._submit(fn, write=True)

    async def claim_due(
        self, route: str, now: float, limit: int, *, max_in_flight: int | None = None
    ) -> list[Batch]:
        """As ``SqlOperations.claim_due``, but not fsynced on its own (``_Op.durable``):
        losing a claim to a power failure only leaves the batch queued, to be sent again,
        as crash recovery would anyway."""
        return await self._submit(
            lambda conn: claim_due(conn, route, now, limit, max_in_flight),
            write=True,
            durable=False,
        )
