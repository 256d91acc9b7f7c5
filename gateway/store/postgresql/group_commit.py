"""Group commit for the PostgreSQL store: the operations queued at one moment run one
after another in ONE transaction, committed once, before any caller is answered (the
store keeps one committer for writes and one for reads, each read group in one snapshot).

Why: one transaction per operation cost ~3.7 commits per message, and each commit is a
WAL flush and a round trip on the server plus a pool check-out and an executor hand-off
in the gateway. SQLite's store groups its callers the same way (``sqlite/store.py``).

A few threads (not one: a group waiting on a row lock must not stall every write) each
take what is queued, up to ``MAX_GROUP`` operations. No savepoints (two
round trips per operation): when an operation fails inside a group, nothing of the group
was committed, and every operation of it runs again alone, in its own transaction, as it
would have without grouping (``run_alone``: retries on conflicts, the store's errors).
An operation raising is rare (a conflict, a bad request), so that costs little. A group
whose COMMIT itself failed is answered with that error: whether it committed is unknown,
and running the operations again could apply them twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, Final

from gateway.errors import StoreError
from gateway.store.postgresql.connection import RawConn

#: Most operations in one transaction: bounds how long its row locks are held.
MAX_GROUP: Final = 64
_STOP: Final = object()

Outcome = tuple["GroupOp", Any, BaseException | None]


class GroupOp:
    """One queued operation; ``future`` belongs to the caller's event loop."""

    __slots__ = ("fn", "future", "loop")

    def __init__(self, fn: Callable[[RawConn], Any], loop: asyncio.AbstractEventLoop) -> None:
        self.fn = fn
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()


def _settle(outcomes: list[Outcome]) -> None:
    """On the event loop: hand each operation's outcome to its caller."""
    for op, value, failure in outcomes:
        if op.future.done():  # the caller gave up meanwhile
            continue
        if failure is not None:
            op.future.set_exception(failure)
        else:
            op.future.set_result(value)


def _deliver(outcomes: list[Outcome]) -> None:
    """From a committer thread: one loop wake-up per group, not one per operation."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
            loop.call_soon_threadsafe(_settle, items)


class GroupCommitter:
    """Threads running queued operations in groups (see the module docstring).

    ``transaction(body)`` runs ``body(raw)`` in one transaction on a pooled connection
    and commits it, raising what ``body`` or the commit raised; ``run_alone(fn)`` runs one
    operation in its own transaction the store's usual way.
    """

    def __init__(
        self,
        transaction: Callable[[Callable[[RawConn], list[Any]]], list[Any]],
        run_alone: Callable[[Callable[[RawConn], Any]], Any],
        threads: int,
    ) -> None:
        self._transaction = transaction
        self._run_alone = run_alone
        self._queue: queue.SimpleQueue[GroupOp | object] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"pg-group-{i}", daemon=True)
            for i in range(threads)
        ]
        self._closed = False

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Finish what is queued, then end the threads (blocking: call off the loop)."""
        self._closed = True
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join()
        leftover: list[Outcome] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, GroupOp):
                leftover.append((item, None, StoreError("store is closed")))
        _deliver(leftover)

    def submit(self, fn: Callable[[RawConn], Any]) -> asyncio.Future[Any]:
        if self._closed:
            raise StoreError("store is not open")
        op = GroupOp(fn, asyncio.get_running_loop())
        self._queue.put(op)
        return op.future

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            group: list[GroupOp] = []
            while isinstance(item, GroupOp):
                group.append(item)
                if len(group) >= MAX_GROUP:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            try:
                self._run_group(group)
            except BaseException as exc:  # never leave a caller waiting
                _deliver([(op, None, StoreError(f"store thread failed: {exc}")) for op in group])
                if not isinstance(exc, Exception):
                    raise
            if item is _STOP:
                return

    def _run_group(self, group: list[GroupOp]) -> None:
        # A caller that gave up while queued gets nothing run (reading ``cancelled()``
        # from this thread is a benign race, as in ``sqlite/store.py``).
        ops = [op for op in group if not op.future.cancelled()]
        if len(ops) == 1:
            _deliver([self._alone(ops[0])])
            return
        if not ops:
            return
        ran_all = False

        def body(raw: RawConn) -> list[Any]:
            nonlocal ran_all
            values = [op.fn(raw) for op in ops]
            ran_all = True
            return values

        try:
            values = self._transaction(body)
        except Exception as exc:
            if ran_all:
                # The COMMIT failed: nothing may run again (see the module docstring).
                failure = exc if isinstance(exc, StoreError) else StoreError(str(exc))
                _deliver([(op, None, failure) for op in ops])
                return
            # One operation failed and the group was rolled back: each alone, as usual.
            _deliver([self._alone(op) for op in ops])
            return
        _deliver([(op, value, None) for op, value in zip(ops, values, strict=True)])

    def _alone(self, op: GroupOp) -> Outcome:
        try:
            return (op, self._run_alone(op.fn), None)
        except Exception as exc:
            return (op, None, exc)
