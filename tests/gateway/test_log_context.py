"""bound_context binds and restores the log context as structlog's bound_contextvars does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import structlog
from structlog.contextvars import (
    bind_contextvars,
    bound_contextvars,
    clear_contextvars,
    get_contextvars,
)

from gateway.ops.log_context import bound_context


@pytest.fixture(autouse=True)
def clean_context() -> Iterator[None]:
    clear_contextvars()
    yield
    clear_contextvars()


def test_keys_are_bound_inside_and_gone_after() -> None:
    bind_contextvars(request_id="r1")
    with bound_context(message_id="m1", mmsc="mock"):
        assert get_contextvars() == {"request_id": "r1", "message_id": "m1", "mmsc": "mock"}
    assert get_contextvars() == {"request_id": "r1"}


def fail_inside(seen: list[dict[str, object]]) -> None:
    with bound_context(message_id="inner"):
        seen.append(get_contextvars())
        raise RuntimeError


def test_nested_and_failing_blocks_restore_what_was_there() -> None:
    seen: list[dict[str, object]] = []
    with bound_context(message_id="outer", mmsc="a"):
        with pytest.raises(RuntimeError):
            fail_inside(seen)
        assert seen == [{"message_id": "inner", "mmsc": "a"}]
        assert get_contextvars() == {"message_id": "outer", "mmsc": "a"}
    assert get_contextvars() == {}


@pytest.mark.parametrize("use_ours", [False, True])
def test_same_context_as_structlog_after_each_step(use_ours: bool) -> None:
    """The same sequence with structlog's manager and ours leaves the same contexts."""
    manager = bound_context if use_ours else bound_contextvars
    seen = []
    bind_contextvars(a=1)
    with manager(a=2, b=3):
        seen.append(get_contextvars())
        bind_contextvars(c=4)  # bound inside, outside any manager: stays, as with structlog
        with manager(b=None):
            seen.append(get_contextvars())
        seen.append(get_contextvars())
    seen.append(get_contextvars())
    assert seen == [
        {"a": 2, "b": 3},
        {"a": 2, "b": None, "c": 4},
        {"a": 2, "b": 3, "c": 4},
        {"a": 1, "c": 4},
    ]


async def test_tasks_do_not_see_each_others_context() -> None:
    both_bound = asyncio.Event()
    entered = 0
    seen: dict[str, dict[str, object]] = {}

    async def one(name: str) -> None:
        nonlocal entered
        with bound_context(message_id=name):
            entered += 1
            if entered == 2:
                both_bound.set()
            await both_bound.wait()
            seen[name] = get_contextvars()
        seen[name + " after"] = get_contextvars()

    await asyncio.gather(one("m1"), one("m2"))
    assert seen == {
        "m1": {"message_id": "m1"},
        "m2": {"message_id": "m2"},
        "m1 after": {},
        "m2 after": {},
    }


def test_log_lines_carry_the_bound_fields() -> None:
    with (
        structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars]
        ) as logs,
        bound_context(message_id="m1", mmsc="mock"),
    ):
        structlog.get_logger("test").info("submitted", attempt=1)
    assert logs == [
        {
            "event": "submitted",
            "attempt": 1,
            "message_id": "m1",
            "mmsc": "mock",
            "log_level": "info",
        }
    ]
