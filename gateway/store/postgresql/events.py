"""PostgreSQL SQL of the webhook outbox: events appended in the transaction of the change
they describe (a transactional outbox), then claimed head-of-stream under a lease (one
instance sends an event at a time), retried, dead-lettered.
"""

from __future__ import annotations

import uuid
from typing import Any

from gateway.store.postgresql.connection import Conn
from gateway.store.records import OutboxEvent
from gateway.store.rows import (
    DEAD_LETTER_COLUMNS,
    RECIPIENT_COLUMNS,
    dead_letter_dict,
    event_body,
    status_event_data,
)


def insert_event(
    conn: Conn,
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
    conn.execute(
        "INSERT INTO outbox (event_id, type, stream, api_key, url, body, state, attempts, "
        "next_attempt_at, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, 'pending', 0, %s, %s, %s)",
        (event_id, event_type, stream, api_key, url, event_body(event_id, event_type, now, data),
         now, now, now),
    )  # fmt: skip
    return event_id


def sync_webhook_targets(conn: Conn, targets: dict[str, str]) -> None:
    """Make the per-API-key default webhook URLs the configured ones.

    An upsert, not delete-and-insert: instances starting together must not collide.
    """
    conn.execute("DELETE FROM webhook_targets WHERE NOT (api_key = ANY(%s))", (list(targets),))
    for api_key, url in sorted(targets.items()):
        conn.execute(
            "INSERT INTO webhook_targets (api_key, url) VALUES (%s, %s) "
            "ON CONFLICT (api_key) DO UPDATE SET url = EXCLUDED.url",
            (api_key, url),
        )


def message_status_event(
    conn: Conn,
    message_id: str,
    indexes: list[int],
    now: float,
    report: dict[str, Any] | None = None,
) -> str | None:
    """Emit ``message.status`` for some recipients of a message, if anyone listens."""
    row = conn.execute(
        "SELECT m.api_key, m.status, m.client_ref, m.callback_url, t.url FROM messages m "
        "LEFT JOIN webhook_targets t ON t.api_key = m.api_key WHERE m.id = %s",
        (message_id,),
    ).fetchone()
    if row is None or not indexes:
        return None
    api_key, status, client_ref, callback_url, default_url = row
    url = callback_url or default_url
    if not url:
        return None
    recipients = conn.execute(
        f"SELECT {RECIPIENT_COLUMNS} FROM recipients "  # noqa: S608 - constant columns
        "WHERE message_id = %s AND idx = ANY(%s) ORDER BY idx",
        (message_id, indexes),
    ).fetchall()
    return insert_event(
        conn,
        event_type="message.status",
        stream=message_id,
        api_key=api_key,
        url=url,
        data=status_event_data(message_id, status, client_ref, recipients, report),
        now=now,
    )


def due_events(
    conn: Conn,
    now: float,
    limit: int,
    busy_streams: tuple[str, ...],
    owner: str,
    lease_until: float,
) -> list[OutboxEvent]:
    """Claim the oldest pending event of each stream, if due, its stream not busy here and
    not being sent by a live peer (``owner`` holds it until ``lease_until``).

    Only a stream's head is ever returned, so event n+1 of a message waits until event n
    was delivered or dead-lettered, whichever instance sent it.
    """
    rows = conn.execute(
        "WITH heads AS (SELECT o.id FROM outbox o WHERE o.state = 'pending' "
        "AND o.next_attempt_at <= %s AND (o.lease_until IS NULL OR o.lease_until < %s) "
        "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.stream = o.stream "
        "AND p.state = 'pending' AND p.id < o.id) AND NOT (o.stream = ANY(%s)) "
        "ORDER BY o.next_attempt_at, o.id LIMIT %s FOR UPDATE SKIP LOCKED) "
        "UPDATE outbox o SET claimed_by = %s, lease_until = %s FROM heads WHERE o.id = heads.id "
        "RETURNING o.id, o.event_id, o.type, o.stream, o.api_key, o.url, o.body, o.attempts, "
        "o.created_at, o.next_attempt_at",
        (now, now, list(busy_streams), limit, owner, lease_until),
    ).fetchall()
    rows.sort(key=lambda r: (float(r[9]), int(r[0])))
    return [OutboxEvent(*r[:9]) for r in rows]


def next_event_at(conn: Conn) -> float | None:
    """When a stream's head is next due; one a peer is sending counts from its lease end
    (else an idle instance would poll it without pause)."""
    row = conn.execute(
        "SELECT MIN(GREATEST(o.next_attempt_at, COALESCE(o.lease_until, 0))) FROM outbox o "
        "WHERE o.state = 'pending' AND NOT EXISTS (SELECT 1 FROM outbox p "
        "WHERE p.stream = o.stream AND p.state = 'pending' AND p.id < o.id)"
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def finish_event(conn: Conn, row_id: int, state: str, error: str | None, now: float) -> None:
    """Mark an event ``delivered`` or ``dead`` after an attempt."""
    conn.execute(
        "UPDATE outbox SET state = %s, attempts = attempts + 1, last_error = %s, "
        "claimed_by = NULL, lease_until = NULL, updated_at = %s WHERE id = %s",
        (state, error, now, row_id),
    )


def retry_event(conn: Conn, row_id: int, next_at: float, error: str, now: float) -> None:
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = %s, last_error = %s, "
        "claimed_by = NULL, lease_until = NULL, updated_at = %s WHERE id = %s",
        (next_at, error, now, row_id),
    )


def dead_letters(conn: Conn, api_key: str | None, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT {DEAD_LETTER_COLUMNS} FROM outbox "  # noqa: S608 - constant columns
        "WHERE state = 'dead' AND (%s::text IS NULL OR api_key = %s) ORDER BY id DESC LIMIT %s",
        (api_key, api_key, limit),
    ).fetchall()
    return [dead_letter_dict(r) for r in rows]


def outbox_counts(conn: Conn) -> dict[str, int]:
    return {
        str(s): int(n)
        for s, n in conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()
    }
