"""Group commit without a SAVEPOINT per write: when one write of a group fails, the group
is run again with savepoints, so the failure undoes only its own changes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import StoreError
from gateway.store import SqliteStore

pytestmark = pytest.mark.asyncio


async def grouped(store: SqliteStore, *calls: Any) -> list[Any]:
    """Run store calls as one group: the store thread is held until all are queued."""
    gate = threading.Event()
    blocker = asyncio.ensure_future(store.read(lambda _conn: gate.wait(10)))
    await asyncio.sleep(0.05)  # the store thread is now inside the blocker
    tasks = [asyncio.ensure_future(call) for call in calls]
    await asyncio.sleep(0.05)  # every call is queued behind it
    gate.set()
    await blocker
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_failing_write_undoes_only_itself(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gateway.sqlite3", call_timeout=20.0)
    await store.open()
    runs = {"good": 0}
    try:
        await store.write(lambda conn: conn.execute("CREATE TABLE probe (v INTEGER UNIQUE)"))

        def good(value: int) -> Any:
            def op(conn: sqlite3.Connection) -> int:
                runs["good"] += 1
                conn.execute("INSERT INTO probe (v) VALUES (?)", (value,))
                return value

            return op

        def half_done_then_fails(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO probe (v) VALUES (2)")
            raise ValueError("refused after writing")

        def duplicate(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO probe (v) VALUES (1)")  # violates UNIQUE

        def count(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COUNT(*) FROM probe").fetchone()[0])

        outcomes = await grouped(
            store,
            store.write(good(1)),
            store.write(half_done_then_fails),
            store.read(count),
            store.write(good(3)),
            store.write(duplicate),
            store.read(count),
        )
        assert outcomes[0] == 1
        assert isinstance(outcomes[1], ValueError)
        assert outcomes[2] == 1  # the failed write's row is gone before the next operation
        assert outcomes[3] == 3
        assert isinstance(outcomes[4], StoreError)  # the driver's error, wrapped
        assert outcomes[5] == 2
        rows = await store.read(lambda conn: conn.execute("SELECT v FROM probe").fetchall())
        assert sorted(rows) == [(1,), (3,)]
        # The group ran optimistically first, then again with savepoints.
        assert runs["good"] > 2
    finally:
        await store.close()


async def test_a_group_without_failures_runs_each_operation_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gateway.sqlite3", call_timeout=20.0)
    await store.open()
    runs: list[int] = []
    try:
        await store.write(lambda conn: conn.execute("CREATE TABLE probe (v INTEGER)"))

        def insert(value: int) -> Any:
            def op(conn: sqlite3.Connection) -> None:
                runs.append(value)
                conn.execute("INSERT INTO probe (v) VALUES (?)", (value,))

            return op

        await grouped(store, *(store.write(insert(v)) for v in range(5)))
        assert runs == [0, 1, 2, 3, 4]
        rows = await store.read(lambda conn: conn.execute("SELECT v FROM probe").fetchall())
        assert sorted(rows) == [(v,) for v in range(5)]
    finally:
        await store.close()


async def test_only_a_group_of_claims_commits_without_fsync(tmp_path: Path) -> None:
    """A claim alone commits with synchronous=NORMAL (no fsync), then FULL is restored;
    a group holding any other operation, even a read, stays FULL (``_Op.durable``)."""
    from tests.gateway.test_store import new_message

    store = SqliteStore(tmp_path / "gateway.sqlite3", call_timeout=20.0)
    await store.open()
    statements: list[str] = []
    try:
        await store.write(lambda conn: conn.set_trace_callback(statements.append))
        await store.create_message(new_message("m1"))
        assert not [s for s in statements if "synchronous" in s]
        statements.clear()
        claimed = await store.claim_due("r1", 1000.0, 5)
        assert [b.message_id for b in claimed] == ["m1"]
        pragmas = [s for s in statements if s.startswith(("PRAGMA", "BEGIN", "COMMIT"))]
        assert pragmas == [
            "PRAGMA synchronous=NORMAL",
            "BEGIN IMMEDIATE",
            "COMMIT",
            "PRAGMA synchronous=FULL",
        ]
        statements.clear()
        await grouped(
            store,
            store.claim_due("r1", 1000.0, 5),
            store.create_message(new_message("m2")),
        )
        assert not [s for s in statements if "synchronous" in s]

        def mode(conn: sqlite3.Connection) -> int:
            return int(conn.execute("PRAGMA synchronous").fetchone()[0])

        _, seen = await grouped(store, store.claim_due("r1", 1000.0, 5), store.read(mode))
        assert seen == 2  # FULL: a read grouped with a claim never sees it relaxed
        assert not [s for s in statements if "synchronous=NORMAL" in s]
    finally:
        await store.close()
