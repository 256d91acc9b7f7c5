"""The event loop the daemons run on: uvloop where it is installed, else asyncio's own.

uvloop's libuv transports cut the per-request cost of aiohttp's server and client (the
gateway does two HTTP exchanges per message) and change nothing else; ``MM7GW_EVENT_LOOP
=asyncio`` forces the standard loop (for debugging, or to compare in a benchmark).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None for asyncio's default loop."""
    if os.environ.get("MM7GW_EVENT_LOOP", "auto").lower() == "asyncio":
        return None
    try:
        import uvloop  # noqa: PLC0415 - optional dependency
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the loop :func:`loop_factory` picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
