# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""CPU-bound work on big payloads runs in a worker thread; small payloads stay on the loop.

Hashing, MM7 decoding and encoding take milliseconds per megabyte, and every other
connection waits meanwhile. A thread hop costs tens of microseconds, more than the work on
a typical SubmitRsp or delivery report, so only payloads above ``OFFLOAD_BYTES`` move.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

#: Payload size (bytes) above which the work leaves the event loop.
OFFLOAD_BYTES: Final = 256 * 1024


async def run_sized(size: int, func: Callable[[], T]) -> T:
    """``func()`` in a worker thread when ``size`` > ``OFFLOAD_BYTES``, else right here."""
    if size > OFFLOAD_BYTES:
        return await asyncio.to_thread(func)
    return func()


async def sha256_hex(data: bytes) -> str:
    return await run_sized(len(data), lambda: hashlib.sha256(data).hexdigest())
