"""The SQLite store thread survives a failed COMMIT whose ROLLBACK fails too (it opens a
new connection), and a store call has a deadline: a stuck store thread yields StoreError."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from gateway.errors import StoreError
from gateway.store import SqliteStore

pytestmark = pytest.mark.asyncio


class FlakyConnection(sqlite3.Connection):
    """A real connection whose next statements named in ``fail_next`` raise, as a full
    disk or an I/O error would."""

    fail_next: ClassVar[set[str]] = set()
    opened: ClassVar[int] = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        type(self).opened += 1

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        statement = sql.strip().upper()
        if statement in self.fail_next:
            self.fail_next.discard(statement)
            raise sqlite3.OperationalError(f"disk I/O error (injected on {statement})")
        return super().execute(sql, *args)


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> type[FlakyConnection]:
    FlakyConnection.fail_next = set()
    FlakyConnection.opened = 0
    monkeypatch.setattr(
        sqlite3, "connect", functools.partial(sqlite3.connect, factory=FlakyConnection)
    )
    return FlakyConnection


def insert(value: int) -> Any:
    return lambda conn: conn.execute("INSERT INTO probe (v) VALUES (?)", (value,))


async def test_failed_commit_and_rollback_reconnect_instead_of_killing_the_thread(
    tmp_path: Path, flaky: type[FlakyConnection]
) -> None:
    store = SqliteStore(tmp_path / "gateway.sqlite3", call_timeout=5.0)
    await store.open()
    try:
        await store.write(lambda conn: conn.execute("CREATE TABLE probe (v INTEGER)"))
        assert flaky.opened == 1
        flaky.fail_next = {"COMMIT", "ROLLBACK"}
        with pytest.raises(StoreError, match="database commit failed"):
            await asyncio.wait_for(store.write(insert(1)), 10)
        assert not flaky.fail_next  # both failures happened
        # The thread is alive on a fresh connection, and the failed write left nothing.
        await asyncio.wait_for(store.write(insert(2)), 10)
        rows = await store.read(lambda conn: conn.execute("SELECT v FROM probe").fetchall())
        assert rows == [(2,)]
        assert flaky.opened == 2
        assert store.dead_reason() is None
    finally:
        await store.close()


async def test_a_stuck_store_thread_yields_store_error_within_the_deadline(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "gateway.sqlite3", call_timeout=0.3)
    await store.open()
    release = threading.Event()
    try:
        blocker = asyncio.ensure_future(store.write(lambda _conn: release.wait(10)))
        with pytest.raises(StoreError, match=r"not done within 0\.3 s"):
            await asyncio.wait_for(store.get_message("m-1"), 5)
        release.set()
        with pytest.raises(StoreError):
            await blocker  # it timed out as well
        assert await store.get_message("m-1") is None  # and the store works again
    finally:
        release.set()
        await store.close()


async def test_a_cancelled_caller_stays_cancelled_when_its_operation_just_finished(tmp_path):
    """The store answered and the caller was cancelled in the same loop turn: the caller
    must end cancelled. (asyncio.wait_for on Python 3.11 returned the result instead, so a
    cancelled background task ran on and the stop() waiting for it hung.)"""
    import asyncio
    import threading
    import time

    from gateway.store import SqliteStore

    store = SqliteStore(tmp_path / "db.sqlite3")
    await store.open()
    try:
        started, release = threading.Event(), threading.Event()

        def op(conn):
            started.set()
            release.wait(5)
            return 1

        task = asyncio.ensure_future(store.write(op))
        await asyncio.to_thread(started.wait, 5)
        release.set()
        time.sleep(0.3)  # blocks the loop: the store thread finishes and queues its answer
        task.cancel()  # ... and the cancel lands in the same loop turn as that answer
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
    finally:
        await store.close()


async def test_a_call_that_timed_out_while_queued_is_never_run(tmp_path: Path) -> None:
    """The caller was told StoreError: the write must not happen later behind its back."""
    store = SqliteStore(tmp_path / "gateway.sqlite3", call_timeout=0.3)
    await store.open()
    release = threading.Event()
    ran: list[str] = []
    started = threading.Event()

    def block(_conn: sqlite3.Connection) -> bool:
        started.set()
        return release.wait(10)

    try:
        blocker = asyncio.ensure_future(store.write(block))
        while not started.is_set():  # the store thread is busy: what follows stays queued
            await asyncio.sleep(0.01)
        with pytest.raises(StoreError, match=r"not done within 0\.3 s"):
            await store.write(lambda _conn: ran.append("queued write"))
        release.set()
        with pytest.raises(StoreError):
            await blocker
        await store.write(lambda _conn: ran.append("later write"))  # the queue has drained
        assert ran == ["later write"]
    finally:
        release.set()
        await store.close()
