# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""HMAC signatures of webhook bodies (``X-MM7GW-Signature``).

Pure functions of their inputs (the timestamp is passed in), so receivers and tests can
verify them with the same code. Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

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
