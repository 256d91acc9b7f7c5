"""Media kept in PostgreSQL (the ``media`` table, bytea keyed by sha256), so every
instance of a gateway serves what any of them stored.

Same interface as the file store of ``gateway/media/store.py`` (``MediaStorage``): the
row is committed before ``put`` returns, so a message committed afterwards never names
missing media; storing a content again refreshes its ``stored_at`` (at most hourly), which
retention reads as the file store reads a file's time.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Final

from gateway.errors import NotFoundError

if TYPE_CHECKING:
    from gateway.store.postgresql.store import PostgresStore

_SHA256: Final = re.compile(r"^[0-9a-f]{64}$")
KNOWN_DIGESTS: Final = 4096
#: How stale ``stored_at`` may get while a content is in use (as the file store's time).
TOUCH_INTERVAL_SECONDS: Final = 3600.0


class PostgresMediaStore:
    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        #: Digests known to be stored -> when their time was last refreshed.
        self._known: OrderedDict[str, float] = OrderedDict()

    def _remember(self, digest: str) -> None:
        self._known[digest] = time.monotonic()
        self._known.move_to_end(digest)
        if len(self._known) > KNOWN_DIGESTS:
            self._known.popitem(last=False)

    async def put(self, data: bytes, *, digest: str | None = None) -> str:
        """Store ``data`` once per content; ``digest``: its sha256 if known."""
        if digest is None:
            digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        touched = self._known.get(digest)
        if touched is not None and time.monotonic() - touched < TOUCH_INTERVAL_SECONDS:
            return digest
        now = time.time()
        key = digest
        await self.store.run_raw(
            lambda raw: raw.execute(
                "INSERT INTO media (sha256, size, data, stored_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (sha256) DO UPDATE SET stored_at = excluded.stored_at",
                (key, len(data), data, now),
            )
        )
        self._remember(digest)
        return digest

    async def get(self, sha256: str) -> bytes:
        if not _SHA256.match(sha256):
            raise NotFoundError("no such media")
        row = await self.store.run_raw(
            lambda raw: raw.execute(
                "SELECT data FROM media WHERE sha256 = %s", (sha256,)
            ).fetchone()
        )
        if row is None:
            raise NotFoundError("no such media")
        return bytes(row[0])

    def exists(self, sha256: str) -> bool:
        """Whether the content is stored (blocking: callers use it on rare paths)."""
        if not _SHA256.match(sha256):
            return False
        if sha256 in self._known:
            return True
        row = self.store.run_raw_sync(
            lambda raw: raw.execute("SELECT 1 FROM media WHERE sha256 = %s", (sha256,)).fetchone()
        )
        return row is not None

    def old_files(self, older_than: float, limit: int) -> list[str]:
        """Up to ``limit`` digests stored (or stored again) last before ``older_than``.
        Blocking: run it in a thread."""
        rows = self.store.run_raw_sync(
            lambda raw: raw.execute(
                "SELECT sha256 FROM media WHERE stored_at < %s ORDER BY stored_at LIMIT %s",
                (older_than, limit),
            ).fetchall()
        )
        return [str(r[0]) for r in rows]

    def delete(self, sha256: str, older_than: float) -> bool:
        """Remove a content unless it was stored again since ``older_than``. Blocking."""
        self._known.pop(sha256, None)
        count = self.store.run_raw_sync(
            lambda raw: (
                raw.execute(
                    "DELETE FROM media WHERE sha256 = %s AND stored_at < %s", (sha256, older_than)
                ).rowcount
            )
        )
        return bool(count)
