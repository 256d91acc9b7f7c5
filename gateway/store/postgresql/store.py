"""PostgreSQL implementation of the store, for several gateway instances sharing one
database (DESIGN.md section 11).

Theory of operation: the operations are those of ``SqlOperations``, the very functions
``SqliteStore`` runs, over pooled connections, committed before the caller's coroutine
returns. Writes and reads queued at one moment share one transaction (a group commit,
``group_commit.py``); claims, media and the cluster's calls run one transaction each on a
thread of the store's own executor. SQLite runs them one after another; here they run at once,
at READ COMMITTED, and what SQLite's one-at-a-time order guaranteed is kept by locks:
every change to a message first takes the message row's lock (``sqlite/locks.py``, a
no-op on SQLite), so its status and events are computed from every recipient; a report
and the SubmitRsp naming the same MM7 MessageID, and pool sends to one number, take
advisory locks (below); claims use ``FOR UPDATE SKIP LOCKED``, leases and a per-route
advisory lock (``claims.py``). A deadlock or a unique violation (two instances storing
one idempotency key) rolls the operation back and it runs again. (SERIALIZABLE was
tried first: on small tables its predicate locks made unrelated operations fail again
and again.) Membership and the shared token buckets are in ``cluster.py``, media in
``media.py``, bulk sends' differences in ``campaigns.py``.
"""

from __future__ import annotations

import asyncio
import functools
import random
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool, PoolTimeout

from gateway.errors import StoreError
from gateway.store.history import AttemptRow
from gateway.store.postgresql import claims, cluster
from gateway.store.postgresql.campaigns import SharedCampaignOps
from gateway.store.postgresql.connection import PgConnection, RawConn, lock
from gateway.store.postgresql.group_commit import GroupCommitter
from gateway.store.postgresql.media import PostgresMediaStore
from gateway.store.postgresql.migrations import migrate
from gateway.store.records import (
    Batch,
    MessageRecord,
    NewMessage,
    OutboxEvent,
    ReportResult,
    ReportRow,
    SmsJob,
)
from gateway.store.sqlite import history, reports
from gateway.store.sqlite.messages import create_message, finish_batch
from gateway.store.sqlite.operations import SqlOperations
from gateway.store.sqlite.pools import POOL_SENDS_KEEP_SECONDS

T = TypeVar("T")
#: Conflicts with a concurrent transaction; running the operation again settles them.
_TRANSIENT: Final = (
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.UniqueViolation,
)
_ATTEMPTS: Final = 10
#: Threads committing groups of writes (``group_commit.py``).
WRITERS: Final = 2
#: Threads running groups of reads, each group in one snapshot: every read in it was
#: asked for before the snapshot was taken, so it sees what committed before it was asked.
READERS: Final = 2
#: Deadline of one store call (as ``SqliteStore``'s): a dead server shows as errors.
CALL_TIMEOUT_SECONDS: Final = 30.0
#: Writes and claims: READ COMMITTED, set on every pooled connection (``_configure``),
#: whatever the server's default is (see the module docstring). Reads: one snapshot,
#: read only (``_run``).
_WRITE: Final = False
_READ: Final = True


def _configure(conn: RawConn) -> None:
    # Sent with each transaction's BEGIN: no extra round trip.
    conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED


def _run(raw: RawConn, fn: Callable[[RawConn], T], read_only: bool) -> T:
    """``fn`` over ``raw`` as one transaction (committed by the pool on return)."""
    if not read_only:
        return fn(raw)
    # Set before the transaction, psycopg sends these with its BEGIN: no round trip of
    # their own (a SET TRANSACTION statement was one).
    raw.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    raw.read_only = True
    try:
        value = fn(raw)
        raw.commit()
    finally:
        if raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raw.rollback()
        raw.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
        raw.read_only = False
    return value


def _redacted(exc: BaseException) -> str:
    """The driver's message without a password it may quote from the URL."""
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


class PostgresStore(SharedCampaignOps, SqlOperations):
    """The shared store: one PostgreSQL database for every instance of a gateway."""

    shared = True

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        instance_id: str = "gateway",
        lease_seconds: float = 30.0,
        connect_timeout: float = 10.0,
        call_timeout: float = CALL_TIMEOUT_SECONDS,
    ) -> None:
        self.url = url
        self.pool_size = pool_size
        self.instance_id = instance_id
        self.lease_seconds = lease_seconds
        self.connect_timeout = connect_timeout
        self.call_timeout = call_timeout
        self.schema_version = 0
        self._pool: ConnectionPool[RawConn] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._writers: GroupCommitter | None = None
        self._readers: GroupCommitter | None = None

    # -- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(self.pool_size, thread_name_prefix="pg-store")
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._open_sync)
            self._writers = self._group_committer(_WRITE, WRITERS)
            self._readers = self._group_committer(_READ, READERS)
        except BaseException:
            await self.close()
            raise

    def _open_sync(self) -> None:
        timeout = max(1, int(self.connect_timeout))
        try:
            # Migrate over a connection of its own first: an unreachable server fails here
            # at once, where the pool would keep retrying until its timeout.
            with psycopg.connect(self.url, connect_timeout=timeout, autocommit=True) as conn:
                self.schema_version = migrate(conn)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open database: {_redacted(exc)}") from exc
        pool: ConnectionPool[RawConn] = ConnectionPool(
            self.url,
            min_size=1,
            max_size=self.pool_size,
            open=False,
            timeout=self.connect_timeout,
            kwargs={"connect_timeout": timeout},
            configure=_configure,
            name="mm7gw-store",
        )
        try:
            pool.open(wait=True, timeout=self.connect_timeout)
        except PoolTimeout as exc:
            pool.close()
            raise StoreError(f"cannot open database: {_redacted(exc)}") from exc
        self._pool = pool

    def _group_committer(self, read_only: bool, threads: int) -> GroupCommitter:
        committer = GroupCommitter(
            lambda body: self._group_transaction(body, read_only),
            lambda fn: self._transaction(fn, read_only),
            threads,
        )
        committer.start()
        return committer

    async def close(self) -> None:
        for committer in (self._writers, self._readers):
            if committer is not None:
                await asyncio.to_thread(committer.stop)
        self._writers = self._readers = None
        pool, executor = self._pool, self._executor
        self._pool = self._executor = None
        if pool is not None:
            await asyncio.to_thread(pool.close)
        if executor is not None:
            executor.shutdown(wait=False)

    def dead_reason(self) -> str | None:
        """None while open (a server that went away shows as failing calls, which the
        pool reconnects from), like ``SqliteStore`` before it is opened."""
        return None

    # -- running operations -------------------------------------------------------------
    def _transaction(self, fn: Callable[[RawConn], T], read_only: bool) -> T:
        """Run ``fn`` as one transaction, again after a conflict with a concurrent one."""
        pool = self._pool
        if pool is None:
            raise StoreError("store is not open")
        for attempt in range(_ATTEMPTS):
            try:
                with pool.connection() as raw:  # commits on return, rolls back on raise
                    return _run(raw, fn, read_only)
            except _TRANSIENT:
                if attempt + 1 == _ATTEMPTS:
                    raise StoreError("database conflict persisted; try again") from None
                # A short random pause, so the conflicting transactions do not meet again.
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
            except psycopg.Error as exc:
                # Callers catch the store's own error, never the driver's.
                raise StoreError(f"database error: {_redacted(exc)}") from exc
            except PoolTimeout as exc:
                raise StoreError(f"database unavailable: {_redacted(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _group_transaction(self, body: Callable[[RawConn], list[T]], read_only: bool) -> list[T]:
        """One group of operations as one transaction, no retry (``group_commit.py``
        runs each operation again alone when this raises before the commit)."""
        pool = self._pool
        if pool is None:
            raise StoreError("store is not open")
        with pool.connection() as raw:  # commits on return, rolls back on raise
            return _run(raw, body, read_only)

    async def _call(self, fn: Callable[[RawConn], T], read_only: bool) -> T:
        executor = self._executor
        if executor is None or self._pool is None:
            raise StoreError("store is not open")
        job = functools.partial(self._transaction, fn, read_only)
        try:
            async with asyncio.timeout(self.call_timeout):
                return await asyncio.get_running_loop().run_in_executor(executor, job)
        except TimeoutError:
            raise StoreError(f"store call not done within {self.call_timeout:g} s") from None

    @staticmethod
    def _adapted(fn: Callable[[sqlite3.Connection], T]) -> Callable[[RawConn], T]:
        return lambda raw: fn(PgConnection(raw).as_sql_connection())

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one snapshot with the reads queued at the same moment."""
        return await self._grouped(self._readers, fn)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a group commit with the writes queued at the same moment."""
        return await self._grouped(self._writers, fn)

    async def _grouped(
        self, committer: GroupCommitter | None, fn: Callable[[sqlite3.Connection], T]
    ) -> T:
        if committer is None or self._pool is None:
            raise StoreError("store is not open")
        future = committer.submit(self._adapted(fn))
        try:
            async with asyncio.timeout(self.call_timeout):
                result: T = await future
        except TimeoutError:
            raise StoreError(f"store call not done within {self.call_timeout:g} s") from None
        return result

    async def claim(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a claim (row locks and SKIP LOCKED, see ``claims.py``)."""
        return await self._call(self._adapted(fn), _WRITE)

    async def run_raw(self, fn: Callable[[RawConn], T]) -> T:
        """Run ``fn`` over the plain psycopg connection (``%s`` placeholders)."""
        return await self._call(fn, _WRITE)

    def run_raw_sync(self, fn: Callable[[RawConn], T]) -> T:
        """:meth:`run_raw` for callers already on a thread of their own."""
        return self._transaction(fn, _WRITE)

    def media(self) -> PostgresMediaStore:
        """The media store kept in this database (shared by every instance)."""
        return PostgresMediaStore(self)

    def _lease(self, now: float) -> float:
        return now + self.lease_seconds

    # -- orderings SQLite got from running one transaction at a time ---------------------
    async def create_message(self, new: NewMessage) -> tuple[MessageRecord, bool]:
        if new.pool_rules is None or new.pool_rules.max_per_day is None:
            return await super().create_message(new)

        def op(conn: sqlite3.Connection) -> tuple[MessageRecord, bool]:
            # Two submissions to one number must not both pass the pool's daily cap.
            for number in sorted(set(new.recipients)):
                lock(conn, f"pool:{new.pool}:{number}")
            return create_message(conn, new)

        return await self.write(op)

    async def mark_submitted(
        self,
        batch_id: int,
        mm7_message_id: str | None,
        now: float,
        *,
        attempt: AttemptRow | None = None,
    ) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            if mm7_message_id is not None:
                # A report for this MessageID committing at the same moment either sees
                # the batch or is seen by it (as unmatched), never neither.
                lock(conn, f"mm7:{mm7_message_id}")
            history.record_attempt(conn, attempt)
            return finish_batch(conn, batch_id, "submitted", "submitted", None, now, mm7_message_id)

        return await self.write(op)

    async def store_report(self, report: ReportRow) -> ReportResult:
        def op(conn: sqlite3.Connection) -> ReportResult:
            if report.mm7_message_id:
                lock(conn, f"mm7:{report.mm7_message_id}")
            return reports.store_report(conn, report)

        return await self.write(op)

    # -- claims with leases (claims.py) -------------------------------------------------
    async def claim_due(
        self, route: str, now: float, limit: int, *, max_in_flight: int | None = None
    ) -> list[Batch]:
        return await self.claim(
            lambda conn: claims.claim_due(
                conn, route, now, limit, max_in_flight=max_in_flight,
                owner=self.instance_id, lease_until=self._lease(now),
            )
        )  # fmt: skip

    async def requeue_in_flight(self, now: float) -> int:
        """Start-up: only expired leases and this instance's own old claims."""
        return await self.claim(lambda conn: claims.requeue_at_start(conn, now, self.instance_id))

    async def due_events(
        self, now: float, limit: int, busy_streams: tuple[str, ...]
    ) -> list[OutboxEvent]:
        return await self.claim(
            lambda conn: claims.due_events(
                conn, now, limit, busy_streams, owner=self.instance_id,
                lease_until=self._lease(now),
            )
        )  # fmt: skip

    async def next_event_at(self) -> float | None:
        return await self.read(claims.next_event_at)

    async def claim_sms(self, now: float, limit: int) -> list[SmsJob]:
        return await self.claim(
            lambda conn: claims.claim_sms(
                conn, now, limit, owner=self.instance_id, lease_until=self._lease(now)
            )
        )

    async def requeue_sms_sending(self, due: float, now: float) -> int:
        return await self.claim(
            lambda conn: claims.requeue_sms_sending(conn, due, now, self.instance_id)
        )

    async def _purge_pool_sends(self, limit: int) -> int:
        return await self.write(
            lambda conn: claims.purge_pool_sends(conn, POOL_SENDS_KEEP_SECONDS, limit)
        )

    # -- several gateways on one store (cluster.py) -------------------------------------
    async def heartbeat(self, instance_id: str, now: float) -> None:
        await self.claim(lambda conn: cluster.heartbeat(conn, instance_id, now, self._lease(now)))

    async def live_instances(self, since: float) -> int:
        return await self.read(lambda conn: cluster.live_instances(conn, since))

    async def leave(self, instance_id: str) -> None:
        await self.claim(lambda conn: cluster.leave(conn, instance_id))

    async def take_send_token(self, route: str, rate: float, burst: float) -> float:
        return await self.claim(lambda conn: cluster.take_send_token(conn, route, rate, burst))
