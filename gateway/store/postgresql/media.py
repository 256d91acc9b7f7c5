"""Media kept in PostgreSQL (a ``media`` table of bytea keyed by sha256), so every
instance of a gateway reads what any of them stored. Same interface as the file store
of ``gateway/media/store.py``; the row is committed before ``put`` returns, so a message
committed afterwards never names missing media.
"""

from __future__ import annotations

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


class PostgresMediaStore:
    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        #: Digests known to be stored, so repeated media skips the round trip.
        self._known: OrderedDict[str, None] = OrderedDict()

    def _remember(self, digest: str) -> None:
        self._known[digest] = None
        if len(self._known) > KNOWN_DIGESTS:
            self._known.popitem(last=False)

    async def put(self, data: bytes, *, digest: str | None = None) -> str:
        """Store ``data`` once per content; ``digest``: its sha256 if known."""
        digest = digest or hashlib.sha256(data).hexdigest()
        if digest in self._known:
            return digest
        now = time.time()
        await self.store.run(
            lambda conn: conn.execute(
                "INSERT INTO media (sha256, size, data, created_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (sha256) DO NOTHING",
                (digest, len(data), data, now),
            )
        )
        self._remember(digest)
        return digest

    async def get(self, sha256: str) -> bytes:
        if not _SHA256.match(sha256):
            raise NotFoundError("no such media")
        row = await self.store.run(
            lambda conn: conn.execute(
                "SELECT data FROM media WHERE sha256 = %s", (sha256,)
            ).fetchone()
        )
        if row is None:
            raise NotFoundError("no such media")
        return bytes(row[0])

    def exists(self, sha256: str) -> bool:
        """Whether the content is stored (a blocking query: for rare paths only)."""
        if not _SHA256.match(sha256):
            return False
        if sha256 in self._known:
            return True
        row = self.store.run_sync(
            lambda conn: conn.execute("SELECT 1 FROM media WHERE sha256 = %s", (sha256,)).fetchone()
        )
        return row is not None
