"""Content-addressed media files under ``data_dir/media`` (one copy per distinct content).

A campaign to 100,000 recipients stores its image once. Files are written atomically
(temporary file, fsync, rename, fsync of the directory) *before* the message that refers
to them is committed, so a committed message never points at a missing file.

Storing content that is already there refreshes the file's time (at most once per
``TOUCH_INTERVAL_SECONDS``), so a file's mtime is never much older than the newest message
that stored it: retention deletes only files older than its cutoff that nothing kept
refers to (``old_files`` + ``delete``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Final, Protocol

from gateway.errors import NotFoundError, StoreError
from gateway.media.offload import run_sized

KNOWN_DIGESTS: Final = 4096
#: How stale a file's time may get while it is in use (see the module docstring).
TOUCH_INTERVAL_SECONDS: Final = 3600.0
_SHA256: Final = re.compile(r"^[0-9a-f]{64}$")


class MediaStorage(Protocol):
    """What the gateway needs of a media store: the files below, or the PostgreSQL table
    of ``gateway/store/postgresql/media.py`` when several instances share one store."""

    async def put(self, data: bytes, *, digest: str | None = None) -> str: ...
    async def get(self, sha256: str) -> bytes: ...
    def exists(self, sha256: str) -> bool: ...
    # Retention (blocking; run in a thread).
    def old_files(self, older_than: float, limit: int) -> list[str]: ...
    def delete(self, sha256: str, older_than: float) -> bool: ...


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        #: Digests known to be on disk -> when their file's time was last refreshed, so
        #: repeated media skips the thread hop and stat().
        self._known: OrderedDict[str, float] = OrderedDict()
        #: A put that finds the file and a retention delete must not interleave (the put
        #: would return a digest whose file is then unlinked).
        self._files = threading.Lock()

    def _remember(self, digest: str) -> None:
        self._known[digest] = time.monotonic()
        self._known.move_to_end(digest)
        if len(self._known) > KNOWN_DIGESTS:
            self._known.popitem(last=False)

    def path_for(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            # Also what stops path traversal through media ids.
            raise NotFoundError("no such media")
        return self.root / sha256[:2] / sha256

    def put_sync(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_for(digest)
        with self._files:
            try:
                os.utime(path)  # in use again: retention must see a fresh time
            except FileNotFoundError:
                pass  # not there (or just deleted): write it below
            else:
                return digest
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{digest}.{uuid.uuid4().hex}.tmp")
            with tmp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            # Concurrent puts of the same bytes each use their own temporary file; the
            # last rename wins and every content is identical.
            tmp.replace(path)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise StoreError(f"cannot store media: {exc}") from exc
        return digest

    def get_sync(self, sha256: str) -> bytes:
        try:
            return self.path_for(sha256).read_bytes()
        except FileNotFoundError:
            raise NotFoundError("no such media") from None

    def exists(self, sha256: str) -> bool:
        try:
            return self.path_for(sha256).exists()
        except NotFoundError:
            return False

    async def put(self, data: bytes, *, digest: str | None = None) -> str:
        """Store ``data`` (durably, once per content); ``digest``: its sha256 if known."""
        if digest is None:
            # Big media is hashed off the event loop (the common small image stays on it).
            digest = await run_sized(len(data), lambda: hashlib.sha256(data).hexdigest())
        touched = self._known.get(digest)
        if touched is not None and time.monotonic() - touched < TOUCH_INTERVAL_SECONDS:
            return digest
        stored = await asyncio.to_thread(self.put_sync, data)
        self._remember(stored)
        return stored

    async def get(self, sha256: str) -> bytes:
        return await asyncio.to_thread(self.get_sync, sha256)

    def old_files(self, older_than: float, limit: int) -> list[str]:
        """Up to ``limit`` digests whose file was last written or stored before
        ``older_than`` (a Unix time). Blocking: run it in a thread."""
        found: list[str] = []
        if not self.root.is_dir():
            return found
        for directory in sorted(self.root.iterdir()):
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                if not _SHA256.match(path.name):
                    continue  # temporary files of a put in progress
                try:
                    if path.stat().st_mtime < older_than:
                        found.append(path.name)
                except FileNotFoundError:
                    continue
                if len(found) >= limit:
                    return found
        return found

    def delete(self, sha256: str, older_than: float) -> bool:
        """Remove a file unless it was stored again since ``older_than``. Blocking."""
        self._known.pop(sha256, None)
        path = self.path_for(sha256)
        with self._files:
            try:
                if path.stat().st_mtime >= older_than:
                    return False
                path.unlink()
            except FileNotFoundError:
                return False
        return True
