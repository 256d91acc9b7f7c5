"""Kannel's delivery reports: the ``dlr-url`` we hand Kannel and ``GET /sms/dlr`` intake.

The URL carries our intent id and a token (HMAC of the id under the gateway's signing
key), so only whoever received the URL from us can report on that SMS; an optional
address allow-list (``sms.dlr_allow_ips``) narrows it to the Kannel hosts. Kannel
replaces ``%d`` with the report type.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from gateway.errors import ForbiddenError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.ops.sms_metrics import SmsMetrics
    from gateway.store import Store

KANNEL_TYPES = frozenset({1, 2, 4, 8, 16})


def dlr_token(key: bytes, intent_id: int) -> str:
    return hmac.new(key, f"sms-dlr:{intent_id}".encode(), hashlib.sha256).hexdigest()[:32]


def dlr_url(base_url: str, key: bytes, intent_id: int) -> str:
    """``{base}/sms/dlr?id=..&t=..&type=%d`` (``%d`` left for Kannel to fill in)."""
    query = urlencode({"id": str(intent_id), "t": dlr_token(key, intent_id)})
    return f"{base_url.rstrip('/')}/sms/dlr?{query}&type=%d"


class DlrIntake:
    def __init__(
        self,
        store: Store,
        metrics: SmsMetrics,
        *,
        key: Callable[[], bytes],
        allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
        clock: Callable[[], float],
        on_change: Callable[[], None],
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.key = key
        self.allow = allow
        self.clock = clock
        self.on_change = on_change

    def _peer_allowed(self, peer: str | None) -> bool:
        if not self.allow:
            return True
        try:
            address = ipaddress.ip_address((peer or "").split("%", 1)[0])
        except ValueError:
            return False
        return any(address in network for network in self.allow)

    async def handle(self, query: dict[str, str], peer: str | None) -> str:
        """Apply one report; returns the recipient's state (raises ``ApiError``)."""
        if not self._peer_allowed(peer):
            raise ForbiddenError("this address may not report SMS", code="dlr_forbidden")
        raw_id, raw_type = query.get("id", ""), query.get("type", "")
        if not raw_id.isdigit() or len(raw_id) > 18:
            raise ValidationError("id must be our SMS id", field="id", code="invalid_dlr")
        if not raw_type.isdigit() or int(raw_type) not in KANNEL_TYPES:
            raise ValidationError(
                "type must be a Kannel report type: 1, 2, 4, 8 or 16",
                field="type",
                code="invalid_dlr",
            )
        intent_id, dlr_type = int(raw_id), int(raw_type)
        if not hmac.compare_digest(dlr_token(self.key(), intent_id), query.get("t", "")):
            raise ForbiddenError("invalid report token", field="t", code="invalid_dlr_token")
        state = await self.store.sms_report(intent_id, dlr_type, self.clock())
        if state == "unknown":
            raise NotFoundError(f"no SMS {intent_id}", field="id", code="unknown_sms")
        self.metrics.report(dlr_type)
        self.on_change()
        return state
