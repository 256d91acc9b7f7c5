# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""HMAC signatures: webhook bodies (``X-MM7GW-Signature``) and expiring media URLs.

Both are pure functions of their inputs (the clock is passed in), so receivers and tests
can verify them with the same code. Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from typing import TYPE_CHECKING, Final
from urllib.parse import urlencode

if TYPE_CHECKING:
    from pathlib import Path

SIGNATURE_HEADER: Final = "X-MM7GW-Signature"


def webhook_signature(secret: str, body: bytes, timestamp: int) -> str:
    """The header value: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_webhook(
    secret: str, body: bytes, header: str, *, now: float, tolerance: float = 300.0
) -> bool:
    """Check a ``X-MM7GW-Signature`` header (what a receiver does); rejects stale stamps."""
    fields = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = webhook_signature(secret, body, timestamp).rsplit("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


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
