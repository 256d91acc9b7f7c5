"""PostgreSQL SQL of inbound MMS (messages and parts) and of the opt-out suppression list,
which an inbound STOP/START changes in the same transaction as the message that carried it.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.store.postgresql.connection import Conn, executemany
from gateway.store.postgresql.events import insert_event
from gateway.store.records import InboundRow
from gateway.store.rows import (
    INBOUND_COLUMNS,
    INBOUND_PART_COLUMNS,
    inbound_dict,
    suppression_key,
)


def store_inbound(
    conn: Conn, row: InboundRow, event: tuple[str, dict[str, Any]] | None
) -> tuple[str, bool]:
    """Store an inbound MMS (insert-or-nothing on its dedupe key), its opt-out effect and
    its webhook event; returns ``(inbound id, created)``."""
    cur = conn.execute(
        "INSERT INTO inbound_messages (id, mmsc, dedupe_key, api_key, sender, recipient, "
        "recipients_json, subject, body_text, linked_id, transaction_id, optout, sent_at, "
        "received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (dedupe_key) DO NOTHING",
        (
            row.id, row.mmsc, row.dedupe_key, row.api_key, row.sender, row.recipient,
            json.dumps(list(row.recipients)), row.subject, row.text, row.linked_id,
            row.transaction_id, row.optout, row.sent_at, row.received_at,
        ),
    )  # fmt: skip
    if cur.rowcount == 0:
        # READ COMMITTED: the conflicting row is committed by now (the insert waited).
        existing = conn.execute(
            "SELECT id FROM inbound_messages WHERE dedupe_key = %s", (row.dedupe_key,)
        ).fetchone()
        assert existing is not None  # noqa: S101 - the conflict proves it exists
        return str(existing[0]), False
    executemany(
        conn,
        "INSERT INTO inbound_parts (inbound_id, idx, content_type, sha256, size, content_id, "
        "content_location, charset, body_text) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [
            (row.id, i, p.content_type, p.sha256, p.size, p.content_id, p.content_location,
             p.charset, p.text)
            for i, p in enumerate(row.parts)
        ],
    )  # fmt: skip
    if row.optout is not None and row.sender and row.recipient:
        set_suppression(conn, row.sender, row.recipient, row.optout, row.received_at)
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


def _inbound_dict(conn: Conn, r: tuple[Any, ...]) -> dict[str, Any]:
    parts = conn.execute(
        f"SELECT {INBOUND_PART_COLUMNS} FROM inbound_parts "  # noqa: S608 - constant columns
        "WHERE inbound_id = %s ORDER BY idx",
        (r[0],),
    ).fetchall()
    return inbound_dict(r, parts)


def get_inbound(conn: Conn, inbound_id: str) -> dict[str, Any] | None:
    r = conn.execute(
        f"SELECT {INBOUND_COLUMNS} FROM inbound_messages WHERE id = %s",  # noqa: S608 - constant
        (inbound_id,),
    ).fetchone()
    return None if r is None else _inbound_dict(conn, r)


def list_inbound(conn: Conn, api_key: str, limit: int, before: str | None) -> list[dict[str, Any]]:
    """Newest first; an API key sees messages routed to it and unassigned ones."""
    rows = conn.execute(
        f"SELECT {INBOUND_COLUMNS} FROM inbound_messages "  # noqa: S608 - constant
        "WHERE (api_key = %s OR api_key IS NULL) AND (%s::text IS NULL OR (received_at, id) < "
        "(SELECT received_at, id FROM inbound_messages WHERE id = %s)) "
        "ORDER BY received_at DESC, id DESC LIMIT %s",
        (api_key, before, before, limit),
    ).fetchall()
    return [_inbound_dict(conn, r) for r in rows]


def media_type_of(conn: Conn, sha256: str) -> str | None:
    row = conn.execute(
        "SELECT content_type FROM inbound_parts WHERE sha256 = %s LIMIT 1", (sha256,)
    ).fetchone()
    return None if row is None else str(row[0])


def set_suppression(conn: Conn, number: str, short_code: str, action: str, now: float) -> None:
    """``action`` is ``stop`` (suppress the pair) or ``start`` (lift it)."""
    key, code = suppression_key(number), suppression_key(short_code)
    if action == "stop":
        conn.execute(
            "INSERT INTO suppressions (number, short_code, keyword, created_at) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (number, short_code) DO NOTHING",
            (key, code, action, now),
        )
    else:
        conn.execute(
            "DELETE FROM suppressions WHERE number = %s AND short_code = %s", (key, code)
        )


def suppressed_numbers(conn: Conn, pairs: list[tuple[str, str]]) -> list[str]:
    """The numbers of ``(number, sender)`` pairs that are on the suppression list."""
    out = []
    for number, sender in pairs:
        row = conn.execute(
            "SELECT 1 FROM suppressions WHERE number = %s AND short_code = %s",
            (suppression_key(number), suppression_key(sender)),
        ).fetchone()
        if row is not None:
            out.append(number)
    return out
