"""Content-addressed media files under ``data_dir/media`` (one copy per distinct content).

A campaign to 100,000 recipients stores its image once. Files are written atomically
(temporary file, fsync, rename, fsync of the directory) *before* the message that refers
to them is committed, so a committed message never points at a missing file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Final, Protocol

from gateway.errors import NotFoundError, StoreError

KNOWN_DIGESTS: Final = 4096
_SHA256: Final = re.compile(r"^[0-9a-f]{64}$")


class MediaStorage(Protocol):
    """What the gateway needs of a media store: these files, or the PostgreSQL table of
    ``gateway/store/postgresql/media.py`` when several instances share one store."""

    async def put(self, data: bytes, *, digest: str | None = None) -> str: ...
    async def get(self, sha256: str) -> bytes: ...
    def exists(self, sha256: str) -> bool: ...


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        #: Digests known to be on disk, so repeated media skips the thread hop and stat().
        self._known: OrderedDict[str, None] = OrderedDict()

    def _remember(self, digest: str) -> None:
        self._known[digest] = None
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
        if path.exists():
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
        digest = digest or hashlib.sha256(data).hexdigest()
        if digest in self._known:
            return digest
        stored = await asyncio.to_thread(self.put_sync, data)
        self._remember(stored)
        return stored

    async def get(self, sha256: str) -> bytes:
        return await asyncio.to_thread(self.get_sync, sha256)
