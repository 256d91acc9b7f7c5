"""SQL of the webhook outbox: events appended in the transaction of the change they
describe (a transactional outbox), then claimed head-of-stream, retried and dead-lettered.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

from gateway.store.records import OutboxEvent, iso_time


def insert_event(
    conn: sqlite3.Connection,
    *,
    event_type: str,
    stream: str,
    api_key: str | None,
    url: str,
    data: dict[str, Any],
    now: float,
) -> str:
    """Append one webhook event to the outbox; returns its event id."""
    event_id = "evt_" + uuid.uuid4().hex
    body = json.dumps(
        {"id": event_id, "type": event_type, "created_at": iso_time(now), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    conn.execute(
        "INSERT INTO outbox (event_id, type, stream, api_key, url, body, state, attempts, "
        "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
        (event_id, event_type, stream, api_key, url, body, now, now, now),
    )
    return event_id


def sync_webhook_targets(conn: sqlite3.Connection, targets: dict[str, str]) -> None:
    """Replace the per-API-key default webhook URLs with the configured ones."""
    conn.execute("DELETE FROM webhook_targets")
    conn.executemany(
        "INSERT INTO webhook_targets (api_key, url) VALUES (?, ?)", sorted(targets.items())
    )


def message_status_event(
    conn: sqlite3.Connection,
    message_id: str,
    indexes: list[int],
    now: float,
    report: dict[str, Any] | None = None,
) -> str | None:
    """Emit ``message.status`` for some recipients of a message, if anyone listens."""
    row = conn.execute(
        "SELECT m.api_key, m.status, m.client_ref, m.callback_url, t.url FROM messages m "
        "LEFT JOIN webhook_targets t ON t.api_key = m.api_key WHERE m.id = ?",
        (message_id,),
    ).fetchone()
    if row is None or not indexes:
        return None
    api_key, status, client_ref, callback_url, default_url = row
    url = callback_url or default_url
    if not url:
        return None
    placeholders = ", ".join("?" for _ in indexes)
    recipients = [
        {
            "to": r[0],
            "status": r[1],
            "mm7_message_id": r[2],
            "error": r[3],
            "updated_at": iso_time(float(r[4])),
            **({"fallback": r[5]} if r[5] else {}),
        }
        for r in conn.execute(
            "SELECT address, status, mm7_message_id, error, updated_at, fallback FROM recipients "  # noqa: S608 - placeholders only
            f"WHERE message_id = ? AND idx IN ({placeholders}) ORDER BY idx",
            (message_id, *indexes),
        )
    ]
    data: dict[str, Any] = {
        "message_id": message_id,
        "status": status,
        "client_ref": client_ref,
        "recipients": recipients,
    }
    if report is not None:
        data["report"] = report
    return insert_event(
        conn,
        event_type="message.status",
        stream=message_id,
        api_key=api_key,
        url=url,
        data=data,
        now=now,
    )


def due_events(
    conn: sqlite3.Connection, now: float, limit: int, busy_streams: tuple[str, ...]
) -> list[OutboxEvent]:
    """The oldest pending event of each stream, if due and its stream is not busy.

    Only a stream's head is ever returned, so event n+1 of a message waits until event n
    was delivered or dead-lettered.
    """
    rows = conn.execute(
        "SELECT o.id, o.event_id, o.type, o.stream, o.api_key, o.url, o.body, o.attempts, "
        "o.created_at FROM outbox o WHERE o.state = 'pending' AND o.next_attempt_at <= ? "
        "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.stream = o.stream "
        "AND p.state = 'pending' AND p.id < o.id) ORDER BY o.next_attempt_at, o.id LIMIT ?",
        (now, limit + len(busy_streams)),
    ).fetchall()
    busy = set(busy_streams)
    events = [OutboxEvent(*r) for r in rows if r[3] not in busy]
    return events[:limit]


def next_event_at(conn: sqlite3.Connection) -> float | None:
    row = conn.execute("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'").fetchone()
    return None if row is None or row[0] is None else float(row[0])


def finish_event(
    conn: sqlite3.Connection, row_id: int, state: str, error: str | None, now: float
) -> None:
    """Mark an event ``delivered`` or ``dead`` after an attempt."""
    conn.execute(
        "UPDATE outbox SET state = ?, attempts = attempts + 1, last_error = ?, claimed_by = NULL, "
        "lease_until = NULL, updated_at = ? WHERE id = ?",
        (state, error, now, row_id),
    )


def retry_event(
    conn: sqlite3.Connection, row_id: int, next_at: float, error: str, now: float
) -> None:
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, "
        "claimed_by = NULL, lease_until = NULL, updated_at = ? WHERE id = ?",
        (next_at, error, now, row_id),
    )


def dead_letters(conn: sqlite3.Connection, api_key: str | None, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT event_id, type, stream, url, attempts, last_error, created_at, updated_at, body "
        "FROM outbox WHERE state = 'dead' AND (? IS NULL OR api_key = ?) "
        "ORDER BY id DESC LIMIT ?",
        (api_key, api_key, limit),
    ).fetchall()
    return [
        {
            "event_id": r[0],
            "type": r[1],
            "stream": r[2],
            "url": r[3],
            "attempts": int(r[4]),
            "last_error": r[5],
            "created_at": iso_time(r[6]),
            "dead_at": iso_time(r[7]),
            "event": json.loads(r[8]),
        }
        for r in rows
    ]


def outbox_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {
        str(s): int(n) for s, n in conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state")
    }
