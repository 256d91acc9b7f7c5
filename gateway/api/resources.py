"""JSON renderings of stored records (the REST API's resource shapes)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from gateway.store import MessageRecord


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return _iso(timestamp)


@functools.lru_cache(maxsize=4096)
def _iso(timestamp: float) -> str:
    # Memoised: a resource repeats its times (a new message's created, updated and send
    # times are one value), and a listing repeats them across messages.
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def message_resource(record: MessageRecord) -> dict[str, Any]:
    mm7_ids = [r.mm7_message_id for r in record.recipients if r.mm7_message_id]
    return {
        "id": record.id,
        "status": record.status,
        "route": record.route,
        "from": record.sender,
        "pool": record.pool,
        "to": [r.address for r in record.recipients],
        "subject": record.subject,
        "client_ref": record.client_ref,
        "mm7_message_id": mm7_ids[0] if mm7_ids else None,
        "recipients": [
            {
                "to": r.address,
                "from": r.sender,
                "status": r.status,
                "mm7_message_id": r.mm7_message_id,
                "error": r.error,
                "updated_at": iso(r.updated_at),
                **({"fallback": r.fallback} if r.fallback else {}),
            }
            for r in record.recipients
        ],
        "media": [
            {"content_type": p.content_type, "size": p.size, "sha256": p.sha256}
            for p in record.parts
        ],
        "attempts": record.attempts,
        "last_error": record.last_error,
        "fallback": record.fallback,
        "original_bytes": record.original_bytes,
        "adapted_bytes": record.adapted_bytes,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "send_at": iso(record.send_at),
        "expires_at": iso(record.expires_at),
    }
