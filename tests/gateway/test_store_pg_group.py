"""The PostgreSQL store's group commit (``gateway/store/postgresql/group_commit.py``):
writes queued at one moment share one transaction, and one failing write of a group
undoes only itself (the group is run again, each write alone)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from typing import Any

import pytest

from gateway.store.postgresql import PostgresStore
from gateway.store.postgresql.store import WRITERS

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def store_and_table(pg_url):
    """An open store and a fresh probe table of its own (dropped after)."""
    store = PostgresStore(pg_url, pool_size=4, instance_id="gw-group")
    await store.open()
    table = f"probe_{uuid.uuid4().hex[:10]}"
    await store.write(lambda conn: conn.execute(f"CREATE TABLE {table} (v INTEGER UNIQUE)"))
    yield store, table
    await store.write(lambda conn: conn.execute(f"DROP TABLE {table}"))
    await store.close()


async def queued_behind_busy_writers(store: PostgresStore, calls: list[Any]) -> list[Any]:
    """Run ``calls`` while every writer thread is held, so they queue up together."""
    gate = threading.Event()
    blockers = [
        asyncio.ensure_future(store.write(lambda _conn: gate.wait(10))) for _ in range(WRITERS)
    ]
    await asyncio.sleep(0.1)  # each writer thread is inside a blocker
    tasks = [asyncio.ensure_future(call) for call in calls]
    await asyncio.sleep(0.1)  # every call is queued
    gate.set()
    await asyncio.gather(*blockers)
    return await asyncio.gather(*tasks, return_exceptions=True)


def insert(table: str, value: int, *, fail: bool = False) -> Any:
    def op(conn: sqlite3.Connection) -> int:
        conn.execute(f"INSERT INTO {table} (v) VALUES (?)", (value,))  # noqa: S608 - our table
        if fail:
            raise ValueError(f"refused {value}")
        return int(conn.execute("SELECT txid_current()").fetchone()[0])

    return op


async def stored(store: PostgresStore, table: str) -> list[int]:
    rows = await store.read(
        lambda conn: conn.execute(f"SELECT v FROM {table} ORDER BY v").fetchall()  # noqa: S608
    )
    return [int(v) for (v,) in rows]


async def test_concurrent_writes_share_transactions(store_and_table) -> None:
    store, table = store_and_table
    results = await queued_behind_busy_writers(
        store, [store.write(insert(table, value)) for value in range(40)]
    )
    assert all(isinstance(r, int) for r in results), results
    # Queued together, they took at most one transaction per writer thread.
    assert len(set(results)) <= WRITERS
    assert await stored(store, table) == list(range(40))


async def test_a_failing_write_undoes_only_itself(store_and_table) -> None:
    store, table = store_and_table
    calls = [store.write(insert(table, value, fail=value == 7)) for value in range(20)]
    results = await queued_behind_busy_writers(store, calls)
    assert isinstance(results[7], ValueError)
    assert str(results[7]) == "refused 7"
    assert all(isinstance(r, int) for i, r in enumerate(results) if i != 7), results
    assert await stored(store, table) == [v for v in range(20) if v != 7]


async def test_a_read_sees_every_write_answered_before_it(store_and_table) -> None:
    store, table = store_and_table
    for value in range(5):
        await store.write(insert(table, value))
        reads = await asyncio.gather(*(stored(store, table) for _ in range(8)))
        assert all(r == list(range(value + 1)) for r in reads)
