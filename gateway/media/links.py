"""Signed, expiring public URLs for stored media (``GET /v1/media/{sha256}``).

Link fallbacks, inbound MMS webhooks and the REST API hand these out so that handsets and
browsers can fetch media without an API key. The signature covers the media id and the
expiry; the key is configured or generated once under ``data_dir`` so links survive a
restart. The functions are pure (the clock is passed in); ``MediaLinks`` holds the key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlencode

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def _media_mac(key: bytes, media_id: str, expires: int) -> str:
    return hmac.new(key, f"media:{media_id}:{expires}".encode(), hashlib.sha256).hexdigest()


def media_query(key: bytes, media_id: str, expires: int) -> str:
    """The query string of a signed media URL: ``exp=<unix>&sig=<hex>``."""
    return urlencode({"exp": str(expires), "sig": _media_mac(key, media_id, expires)})


def media_url(base_url: str, key: bytes, media_id: str, expires: int) -> str:
    """An absolute, signed, expiring URL for ``GET /v1/media/{media_id}``."""
    return f"{base_url.rstrip('/')}/v1/media/{media_id}?{media_query(key, media_id, expires)}"


def verify_media(key: bytes, media_id: str, expires: str, signature: str, *, now: float) -> bool:
    """True when ``sig`` is ours for this media id and expiry, and it has not expired."""
    try:
        exp = int(expires)
    except ValueError:
        return False
    if exp < now:
        return False
    return hmac.compare_digest(_media_mac(key, media_id, exp), signature)


def load_signing_key(configured: str | None, path: Path) -> bytes:
    """The media-URL signing key: the configured one, else one generated once under data_dir.

    The generated key survives restarts, so links handed out stay valid until they expire.
    """
    if configured:
        return configured.encode()
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.hex())
        handle.flush()
        os.fsync(handle.fileno())
    return key


class MediaLinks:
    """Makes and checks media URLs for one gateway (the key is loaded by ``load``)."""

    def __init__(
        self,
        *,
        ttl_seconds: float,
        base_url: Callable[[], str],
        clock: Callable[[], float],
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.base_url = base_url
        self.clock = clock
        self.key = b""

    async def load(self, configured: str | None, path: Path) -> None:
        self.key = await asyncio.to_thread(load_signing_key, configured, path)

    def url(self, sha256: str, now: float | None = None) -> str:
        """A URL valid for ``ttl_seconds`` from ``now`` (default: the clock)."""
        start = self.clock() if now is None else now
        return media_url(self.base_url(), self.key, sha256, int(start + self.ttl_seconds))

    def verify(self, media_id: str, expires: str, signature: str) -> bool:
        return verify_media(self.key, media_id, expires, signature, now=self.clock())
