"""SQL of inbound MMS (messages and parts). An inbound STOP/START changes the opt-out
suppression list (``suppressions.py``) in the same transaction as the message that
carried it (and its confirmation reply, created there as an ordinary outbound message).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Final

from gateway.store.records import InboundRow, NewMessage, iso_time
from gateway.store.sqlite.events import insert_event
from gateway.store.sqlite.messages import create_message
from gateway.store.sqlite.pools import set_consent
from gateway.store.sqlite.suppressions import set_suppression


def store_inbound(
    conn: sqlite3.Connection,
    row: InboundRow,
    event: tuple[str, dict[str, Any]] | None,
    reply: NewMessage | None = None,
) -> tuple[str, bool]:
    """Store an inbound MMS (idempotently), its opt-out effect, its reply and its event.

    Args:
        event: ``(url, data)`` of the ``message.inbound`` event, or ``None``.
        reply: an outbound message to create with it (the STOP/START confirmation); a
            repeated DeliverReq creates none.

    Returns:
        ``(inbound id, created)``; a repeated DeliverReq returns the first id.
    """
    cur = conn.execute(
        "INSERT INTO inbound_messages (id, mmsc, dedupe_key, api_key, sender, recipient, "
        "recipients_json, subject, body_text, linked_id, transaction_id, optout, sent_at, "
        "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (dedupe_key) DO NOTHING",
        (
            row.id, row.mmsc, row.dedupe_key, row.api_key, row.sender, row.recipient,
            json.dumps(list(row.recipients)), row.subject, row.text, row.linked_id,
            row.transaction_id, row.optout, row.sent_at, row.received_at,
        ),
    )  # fmt: skip
    if cur.rowcount == 0:
        existing = conn.execute(
            "SELECT id FROM inbound_messages WHERE dedupe_key = ?", (row.dedupe_key,)
        ).fetchone()
        return str(existing[0]), False
    conn.executemany(
        "INSERT INTO inbound_parts (inbound_id, idx, content_type, sha256, size, content_id, "
        "content_location, charset, body_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (row.id, i, p.content_type, p.sha256, p.size, p.content_id, p.content_location,
             p.charset, p.text)
            for i, p in enumerate(row.parts)
        ],
    )  # fmt: skip
    if row.consent is not None:
        # A keyword to a pool sender changes that pool's consent, not the route-level list.
        set_consent(conn, row.consent)
    elif row.optout is not None and row.sender and row.recipient:
        set_suppression(conn, row.sender, row.recipient, row.optout, row.received_at)
    if reply is not None:
        create_message(conn, reply)
    if event is not None:
        url, data = event
        insert_event(
            conn,
            event_type="message.inbound",
            stream=row.id,
            api_key=row.api_key,
            url=url,
            data=data,
            now=row.received_at,
        )
    return row.id, True


_INBOUND_COLUMNS: Final = (
    "id, mmsc, api_key, sender, recipient, recipients_json, subject, body_text, linked_id, "
    "transaction_id, optout, sent_at, received_at"
)


def _inbound_dict(conn: sqlite3.Connection, r: tuple[Any, ...]) -> dict[str, Any]:
    parts = [
        {
            "index": int(p[0]),
            "content_type": p[1],
            "sha256": p[2],
            "size": int(p[3]),
            "content_id": p[4],
            "content_location": p[5],
            "charset": p[6],
            "text": p[7],
        }
        for p in conn.execute(
            "SELECT idx, content_type, sha256, size, content_id, content_location, charset, "
            "body_text FROM inbound_parts WHERE inbound_id = ? ORDER BY idx",
            (r[0],),
        )
    ]
    return {
        "id": r[0],
        "mmsc": r[1],
        "api_key": r[2],
        "from": r[3],
        "to": r[4],
        "recipients": json.loads(r[5]),
        "subject": r[6],
        "text": r[7],
        "linked_id": r[8],
        "transaction_id": r[9],
        "optout": r[10],
        "sent_at": iso_time(r[11]),
        "received_at": iso_time(r[12]),
        "parts": parts,
    }


def get_inbound(conn: sqlite3.Connection, inbound_id: str) -> dict[str, Any] | None:
    r = conn.execute(
        f"SELECT {_INBOUND_COLUMNS} FROM inbound_messages WHERE id = ?",  # noqa: S608 - constant
        (inbound_id,),
    ).fetchone()
    return None if r is None else _inbound_dict(conn, tuple(r))


def list_inbound(
    conn: sqlite3.Connection, api_key: str, limit: int, before: str | None
) -> list[dict[str, Any]]:
    """Newest first; an API key sees messages routed to it and unassigned ones."""
    cursor = conn.execute(
        f"SELECT {_INBOUND_COLUMNS} FROM inbound_messages "  # noqa: S608 - constant
        "WHERE (api_key = ? OR api_key IS NULL) AND (? IS NULL OR (received_at, id) < "
        "(SELECT received_at, id FROM inbound_messages WHERE id = ?)) "
        "ORDER BY received_at DESC, id DESC LIMIT ?",
        (api_key, before, before, limit),
    )
    return [_inbound_dict(conn, tuple(r)) for r in cursor.fetchall()]


def media_type_of(conn: sqlite3.Connection, sha256: str) -> str | None:
    row = conn.execute(
        "SELECT content_type FROM inbound_parts WHERE sha256 = ? LIMIT 1", (sha256,)
    ).fetchone()
    return None if row is None else str(row[0])
