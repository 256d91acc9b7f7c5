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
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from gateway.errors import IdempotencyConflict, StoreError
from gateway.store.migrations import migrate
from gateway.store.records import (
    FINAL_RECIPIENT_STATES,
    Batch,
    MessageRecord,
    NewMessage,
    PartRef,
    RecipientRecord,
)

T = TypeVar("T")
_MAX_GROUP: Final = 512
_STOP: Final = object()

#: Mixed final states collapse to the best outcome, in this order.
_FINAL_PRECEDENCE: Final = ("read", "delivered", "expired", "rejected", "failed", "canceled")


def aggregate_status(statuses: list[str]) -> str:
    """The message status implied by its recipients' statuses."""
    if not statuses:
        return "queued"
    distinct = set(statuses)
    if len(distinct) == 1:
        return statuses[0]
    if "queued" in distinct:
        return "queued"
    if "submitted" in distinct:
        return "submitted"
    for state in _FINAL_PRECEDENCE:
        if state in distinct:
            return state
    return statuses[0]


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


@dataclass(frozen=True, slots=True)
class CancelPlan:
    """What a cancel found: queued batches are canceled in the store already; these remain.

    ``submitted``: ``(batch_id, route, mm7_message_id)`` to CancelReq now; ``in_flight``:
    batches whose SubmitReq is on the wire (flagged: the worker cancels each one when its
    SubmitRsp is recorded).
    """

    found: bool
    submitted: list[tuple[int, str, str]] = field(default_factory=list)
    in_flight: int = 0


@dataclass(frozen=True, slots=True)
class ReplacePlan:
    """Batches of a message by where they stand (for ``PUT /v1/messages/{id}``).

    ``submitted``: ``(batch_id, route, mm7_message_id)`` accepted by the MMSC and not yet
    final, which a ReplaceReq can still change.
    """

    queued: int = 0
    in_flight: int = 0
    submitted: list[tuple[int, str, str]] = field(default_factory=list)
    #: Every route the message's recipients go to (the new content must fit them all).
    routes: tuple[str, ...] = ()
    #: ``(batch_id, next_attempt_at)`` of the queued batches held for the replacement.
    held: list[tuple[int, float]] = field(default_factory=list)


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
        return await self.write(lambda conn: _create_message(conn, new))

    async def get_message(self, message_id: str) -> MessageRecord | None:
        return await self.read(lambda conn: _load_message(conn, message_id))

    async def claim_due(self, route: str, now: float, limit: int) -> list[Batch]:
        """Move up to ``limit`` due batches of ``route`` to in_flight and return them."""
        return await self.write(lambda conn: _claim_due(conn, route, now, limit))

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
            lambda conn: _finish_batch(
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
        await self.write(lambda conn: _finish_batch(conn, batch_id, state, state, error, now, None))

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
        return await self.write(lambda conn: _cancel_message(conn, message_id, now))

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
                    subject, text, _parts_to_json(parts), fallback, original_bytes,
                    adapted_bytes, now, message_id,
                ),
            )  # fmt: skip
            return _load_message(conn, message_id)

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
            record = _load_message(conn, row[0])
            return None if record is None else (record, row[1])

        return await self.read(op)

    async def mark_batch_canceled(self, batch_id: int, now: float) -> None:
        await self.write(
            lambda conn: _finish_batch(conn, batch_id, "canceled", "canceled", None, now, None)
        )


# -- SQL operations (run on the store thread) -------------------------------------------------


def _parts_to_json(parts: tuple[PartRef, ...]) -> str:
    return json.dumps(
        [
            {
                "content_type": p.content_type,
                "sha256": p.sha256,
                "size": p.size,
                "content_id": p.content_id,
                "name": p.name,
            }
            for p in parts
        ],
        separators=(",", ":"),
    )


def _parts_from_json(raw: str) -> tuple[PartRef, ...]:
    return tuple(
        PartRef(
            content_type=item["content_type"],
            sha256=item["sha256"],
            size=int(item["size"]),
            content_id=item["content_id"],
            name=item.get("name"),
        )
        for item in json.loads(raw)
    )


def _create_message(conn: sqlite3.Connection, new: NewMessage) -> tuple[MessageRecord, bool]:
    if new.idempotency_key is not None:
        row = conn.execute(
            "SELECT id, request_hash FROM messages WHERE api_key = ? AND idempotency_key = ?",
            (new.api_key, new.idempotency_key),
        ).fetchone()
        if row is not None:
            if row[1] != new.request_hash:
                raise IdempotencyConflict(
                    "Idempotency-Key was already used with a different request"
                )
            existing = _load_message(conn, row[0])
            if existing is None:  # pragma: no cover - same transaction
                raise StoreError("idempotent message vanished")
            return existing, False
    conn.execute(
        "INSERT INTO messages (id, api_key, route, status, sender, subject, body_text, parts_json, "
        "priority, delivery_report, read_report, callback_url, client_ref, idempotency_key, "
        "request_hash, fallback, original_bytes, adapted_bytes, attempts, created_at, updated_at, "
        "send_at, expires_at) VALUES "
        "(?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
        (
            new.id,
            new.api_key,
            new.route,
            new.sender,
            new.subject,
            new.text,
            _parts_to_json(new.parts),
            new.priority,
            int(new.delivery_report),
            int(new.read_report),
            new.callback_url,
            new.client_ref,
            new.idempotency_key,
            new.request_hash,
            new.fallback,
            new.original_bytes,
            new.adapted_bytes,
            new.created_at,
            new.created_at,
            new.send_at,
            new.expires_at,
        ),
    )
    recipient_rows: list[tuple[str, int, str, int | None, float]] = []
    by_route: dict[str, list[tuple[int, str]]] = {}
    for idx, (address, route) in enumerate(zip(new.recipients, new.recipient_routes, strict=True)):
        by_route.setdefault(route, []).append((idx, address))
    ordinal = 0
    for route, members in by_route.items():
        size = max(1, new.batch_sizes.get(route, 1))
        for start in range(0, len(members), size):
            ordinal += 1
            # The TransactionID is fixed for the batch's life (retries keep it, so MMSCs
            # that de-duplicate on it can); message id + ordinal is unique without a lookup.
            # RETURNING (not lastrowid): portable to PostgreSQL.
            batch_id = conn.execute(
                "INSERT INTO batches (message_id, route, state, attempts, next_attempt_at, "
                "expires_at, transaction_id, created_at, updated_at) "
                "VALUES (?, ?, 'queued', 0, ?, ?, ?, ?, ?) RETURNING id",
                (
                    new.id, route, new.send_at, new.expires_at, f"{new.id}-{ordinal}",
                    new.created_at, new.created_at,
                ),
            ).fetchone()[0]  # fmt: skip
            recipient_rows.extend(
                (new.id, idx, address, batch_id, new.created_at)
                for idx, address in members[start : start + size]
            )
    conn.executemany(
        "INSERT INTO recipients (message_id, idx, address, status, batch_id, updated_at) "
        "VALUES (?, ?, ?, 'queued', ?, ?)",
        recipient_rows,
    )
    # What _load_message would read back, built from what was just written (a new message:
    # every recipient queued, nothing attempted).
    record = MessageRecord(
        id=new.id,
        api_key=new.api_key,
        route=new.route,
        status="queued",
        sender=new.sender,
        subject=new.subject,
        text=new.text,
        parts=new.parts,
        priority=new.priority,
        delivery_report=new.delivery_report,
        read_report=new.read_report,
        callback_url=new.callback_url,
        client_ref=new.client_ref,
        idempotency_key=new.idempotency_key,
        request_hash=new.request_hash,
        fallback=new.fallback,
        original_bytes=new.original_bytes,
        adapted_bytes=new.adapted_bytes,
        attempts=0,
        last_error=None,
        created_at=float(new.created_at),
        updated_at=float(new.created_at),
        send_at=float(new.send_at),
        expires_at=float(new.expires_at),
        recipients=tuple(
            RecipientRecord(address=address, status="queued", updated_at=float(new.created_at))
            for address in new.recipients
        ),
    )
    return record, True


_MESSAGE_COLUMNS: Final = (
    "id, api_key, route, status, sender, subject, body_text, parts_json, priority, "
    "delivery_report, read_report, callback_url, client_ref, idempotency_key, request_hash, "
    "fallback, original_bytes, adapted_bytes, attempts, last_error, created_at, updated_at, "
    "send_at, expires_at"
)


def _load_message(conn: sqlite3.Connection, message_id: str) -> MessageRecord | None:
    row = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?",  # noqa: S608 - constant columns
        (message_id,),
    ).fetchone()
    if row is None:
        return None
    recipients = tuple(
        RecipientRecord(
            address=r[0], status=r[1], mm7_message_id=r[2], error=r[3], updated_at=float(r[4])
        )
        for r in conn.execute(
            "SELECT address, status, mm7_message_id, error, updated_at FROM recipients "
            "WHERE message_id = ? ORDER BY idx",
            (message_id,),
        )
    )
    return MessageRecord(
        id=row[0],
        api_key=row[1],
        route=row[2],
        status=row[3],
        sender=row[4],
        subject=row[5],
        text=row[6],
        parts=_parts_from_json(row[7]),
        priority=row[8],
        delivery_report=bool(row[9]),
        read_report=bool(row[10]),
        callback_url=row[11],
        client_ref=row[12],
        idempotency_key=row[13],
        request_hash=row[14],
        fallback=row[15],
        original_bytes=row[16],
        adapted_bytes=row[17],
        attempts=int(row[18]),
        last_error=row[19],
        created_at=float(row[20]),
        updated_at=float(row[21]),
        send_at=float(row[22]),
        expires_at=float(row[23]),
        recipients=recipients,
    )


def _claim_due(conn: sqlite3.Connection, route: str, now: float, limit: int) -> list[Batch]:
    rows = conn.execute(
        "SELECT id, message_id, attempts, expires_at, transaction_id FROM batches "
        "WHERE route = ? AND state = 'queued' AND next_attempt_at <= ? "
        "ORDER BY next_attempt_at, id LIMIT ?",
        (route, now, limit),
    ).fetchall()
    if not rows:
        return []
    conn.executemany(
        "UPDATE batches SET state = 'in_flight', attempts = attempts + 1, updated_at = ? "
        "WHERE id = ?",
        [(now, row[0]) for row in rows],
    )
    batches = []
    for batch_id, message_id, attempts, expires_at, transaction_id in rows:
        recipients = tuple(
            r[0]
            for r in conn.execute(
                "SELECT address FROM recipients WHERE batch_id = ? ORDER BY idx", (batch_id,)
            )
        )
        batches.append(
            Batch(
                id=int(batch_id),
                message_id=message_id,
                route=route,
                attempts=int(attempts) + 1,
                recipients=recipients,
                expires_at=float(expires_at),
                # A fresh TransactionID per attempt would defeat duplicate detection at
                # MMSCs that use it; keep the batch's own for every retry.
                transaction_id=transaction_id,
            )
        )
    conn.executemany(
        "UPDATE messages SET attempts = attempts + 1, updated_at = ? WHERE id = ?",
        [(now, b.message_id) for b in batches],
    )
    return batches


def _refresh_message_status(conn: sqlite3.Connection, message_id: str, now: float) -> str:
    statuses = [
        r[0]
        for r in conn.execute("SELECT status FROM recipients WHERE message_id = ?", (message_id,))
    ]
    status = aggregate_status(statuses)
    conn.execute(
        "UPDATE messages SET status = ?, updated_at = ? WHERE id = ?", (status, now, message_id)
    )
    return status


def _finish_batch(
    conn: sqlite3.Connection,
    batch_id: int,
    batch_state: str,
    recipient_state: str,
    error: str | None,
    now: float,
    mm7_message_id: str | None,
) -> bool:
    """Move a batch and its unfinished recipients to a state; True if a cancel is pending."""
    row = conn.execute(
        "SELECT message_id, cancel_requested, mm7_message_id FROM batches WHERE id = ?",
        (batch_id,),
    ).fetchone()
    if row is None:
        raise StoreError(f"no batch {batch_id}")
    conn.execute(
        "UPDATE batches SET state = ?, mm7_message_id = COALESCE(?, mm7_message_id), "
        "last_error = COALESCE(?, last_error), updated_at = ? WHERE id = ?",
        (batch_state, mm7_message_id, error, now, batch_id),
    )
    final = tuple(FINAL_RECIPIENT_STATES)
    placeholders = ", ".join("?" for _ in final)
    # Only "?" placeholders are interpolated into this statement.
    statement = (
        "UPDATE recipients SET status = ?, mm7_message_id = COALESCE(?, mm7_message_id), "  # noqa: S608
        "error = COALESCE(?, error), updated_at = ? "
        f"WHERE batch_id = ? AND status NOT IN ({placeholders})"
    )
    conn.execute(
        statement,
        (recipient_state, mm7_message_id, error, now, batch_id, *final),
    )
    if error is not None:
        conn.execute("UPDATE messages SET last_error = ? WHERE id = ?", (error, row[0]))
    _refresh_message_status(conn, row[0], now)
    # Issue 5: the message.status webhook event is written in this same transaction, so a
    # state change and its event commit together and in order (transactional outbox).
    from gateway.callbacks.sql import batch_status_changed  # noqa: PLC0415 - store loads first

    batch_status_changed(conn, row[0], batch_id, recipient_state, now, mm7_message_id or row[2])
    return bool(row[1])


def _cancel_message(conn: sqlite3.Connection, message_id: str, now: float) -> CancelPlan:
    if conn.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone() is None:
        return CancelPlan(found=False)
    queued = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM batches WHERE message_id = ? AND state = 'queued'", (message_id,)
        )
    ]
    for batch_id in queued:
        _finish_batch(conn, batch_id, "canceled", "canceled", None, now, None)
    # In flight: the SubmitReq is on the wire and cannot be taken back; flag the batch so
    # the worker cancels it at the MMSC as soon as its SubmitRsp is recorded.
    conn.execute(
        "UPDATE batches SET cancel_requested = 1, updated_at = ? "
        "WHERE message_id = ? AND state IN ('in_flight', 'submitted')",
        (now, message_id),
    )
    submitted = [
        (int(r[0]), str(r[1]), str(r[2]))
        for r in conn.execute(
            "SELECT id, route, mm7_message_id FROM batches WHERE message_id = ? "
            "AND state = 'submitted' AND mm7_message_id IS NOT NULL",
            (message_id,),
        )
    ]
    in_flight = conn.execute(
        "SELECT COUNT(*) FROM batches WHERE message_id = ? AND state = 'in_flight'", (message_id,)
    ).fetchone()[0]
    return CancelPlan(found=True, submitted=submitted, in_flight=int(in_flight))
