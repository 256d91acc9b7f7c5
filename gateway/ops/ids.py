"""Random identifiers (message ids, request ids) without a system call each.

``uuid.uuid4()`` reads ``os.urandom`` for every id. On the event loop that system call
releases the GIL, and the store thread, which is usually waiting for it, takes it: every
id then costs a thread switch each way. Reading the same kernel randomness in blocks of
4 KiB keeps the ids as unpredictable as ``uuid4``'s for a 256th of the calls.
"""

from __future__ import annotations

import os
import threading
from typing import Final

_BLOCK: Final = 4096


class RandomIds:
    """Hex ids from a buffer of ``os.urandom`` bytes, refilled when used up (thread-safe)."""

    def __init__(self, block: int = _BLOCK) -> None:
        self.block = block
        self._buffer = b""
        self._offset = 0
        self._lock = threading.Lock()

    def hex(self, nbytes: int = 16) -> str:
        """``nbytes`` random bytes as ``2 * nbytes`` lowercase hex digits."""
        with self._lock:
            if self._offset + nbytes > len(self._buffer):
                self._buffer = os.urandom(max(self.block, nbytes))
                self._offset = 0
            start = self._offset
            self._offset += nbytes
            return self._buffer[start : self._offset].hex()
