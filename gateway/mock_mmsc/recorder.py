"""``--record DIR``: every raw HTTP message the mock sees, one file each, headers included.

Files are named ``<seq>-<direction>-<kind>.http`` (``000001-in-request.http``,
``000001-in-response.http``, ``000002-out-request.http`` for a callback, …) so that
``ls`` shows each exchange in order; the format is what ``mm7-gateway inspect`` reads.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from pathlib import Path


def http_bytes(start_line: str, headers: Iterable[tuple[str, str]], body: bytes) -> bytes:
    head = [start_line, *(f"{name}: {value}" for name, value in headers), "", ""]
    return "\r\n".join(head).encode("latin-1", "replace") + body


class Recorder:
    """Writes exchanges to a directory (created on first use); files are written off-loop."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._seq = itertools.count(1)

    def next_exchange(self) -> int:
        return next(self._seq)

    async def write(self, exchange: int, direction: str, kind: str, data: bytes) -> None:
        path = self.directory / f"{exchange:06d}-{direction}-{kind}.http"
        await asyncio.to_thread(self._write, path, data)

    def _write(self, path: Path, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
