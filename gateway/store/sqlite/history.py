"""SQL of the console's reads and actions: message search, one message's history, the
per-attempt SubmitReq log, all inbound MMS, and replaying a dead-lettered webhook.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.store.history import (
    AttemptRow,
    BatchRow,
    MessageHistory,
    MessageQuery,
    ReportEntry,
    WebhookEntry,
)
from gateway.store.records import MessageRecord
from gateway.store.sqlite.inbound import _INBOUND_COLUMNS, _inbound_dict
from gateway.store.sqlite.messages import load_message


def record_attempt(conn: sqlite3.Connection, attempt: AttemptRow | None) -> None:
    """Append one SubmitReq exchange (called inside the batch update's transaction)."""
    if attempt is None:
        return
    conn.execute(
        "INSERT INTO submit_attempts (batch_id, message_id, attempt, outcome, status_code, "
        "status_text, error, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            attempt.batch_id, attempt.message_id, attempt.attempt, attempt.outcome,
            attempt.status_code, attempt.status_text, attempt.error, attempt.at,
        ),
    )  # fmt: skip


def search_messages(conn: sqlite3.Connection, query: MessageQuery) -> list[MessageRecord]:
    """Newest first. Text matches a message id or client_ref exactly, or the digits of a
    recipient number (as a substring: operators paste numbers in any format)."""
    text = (query.text or "").strip()
    # Only text that looks like a phone number is matched against numbers ("ref-1" is not).
    looks_like_number = text != "" and all(ch.isdigit() or ch in "+-() ." for ch in text)
    digits = "".join(ch for ch in text if ch.isdigit()) if looks_like_number else ""
    rows = conn.execute(
        "SELECT m.id FROM messages m WHERE (? = '' OR m.id = ? OR m.client_ref = ? "
        "OR (? != '' AND EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id "
        "AND replace(r.address, '+', '') LIKE '%' || ? || '%'))) "
        "AND (? IS NULL OR m.status = ?) AND (? IS NULL OR m.created_at >= ?) "
        "AND (? IS NULL OR m.created_at < ?) ORDER BY m.created_at DESC, m.id DESC LIMIT ?",
        (
            text, text, text, digits, digits, query.status, query.status,
            query.since, query.since, query.until, query.until, query.limit,
        ),
    ).fetchall()  # fmt: skip
    records = (load_message(conn, str(r[0])) for r in rows)
    return [r for r in records if r is not None]


def message_history(conn: sqlite3.Connection, message_id: str) -> MessageHistory | None:
    message = load_message(conn, message_id)
    if message is None:
        return None
    batches = tuple(
        BatchRow(
            id=int(r[0]), route=r[1], state=r[2], attempts=int(r[3]), transaction_id=r[4],
            mm7_message_id=r[5], last_error=r[6], created_at=r[7], updated_at=r[8],
            expires_at=r[9],
            recipients=tuple(
                str(a[0])
                for a in conn.execute(
                    "SELECT address FROM recipients WHERE batch_id = ? ORDER BY idx", (r[0],)
                )
            ),
        )
        for r in conn.execute(
            "SELECT id, route, state, attempts, transaction_id, mm7_message_id, last_error, "
            "created_at, updated_at, expires_at FROM batches WHERE message_id = ? ORDER BY id",
            (message_id,),
        ).fetchall()
    )  # fmt: skip
    attempts = tuple(
        AttemptRow(
            batch_id=int(r[0]), message_id=message_id, attempt=int(r[1]), outcome=r[2],
            status_code=r[3], status_text=r[4], error=r[5], at=r[6],
        )
        for r in conn.execute(
            "SELECT batch_id, attempt, outcome, status_code, status_text, error, at "
            "FROM submit_attempts WHERE message_id = ? ORDER BY id",
            (message_id,),
        )
    )  # fmt: skip
    reports = tuple(
        ReportEntry(
            kind=r[0], mmsc=r[1], recipient=r[2], mm_status=r[3], status_text=r[4],
            mapped_state=r[5], outcome=r[6], report_at=r[7], received_at=r[8],
        )
        for r in conn.execute(
            "SELECT kind, mmsc, recipient, mm_status, status_text, mapped_state, outcome, "
            "report_at, received_at FROM delivery_reports WHERE message_id = ? ORDER BY id",
            (message_id,),
        )
    )  # fmt: skip
    webhooks = tuple(
        WebhookEntry(
            event_id=r[0], event_type=r[1], state=r[2], attempts=int(r[3]), last_error=r[4],
            url=r[5], created_at=r[6], updated_at=r[7],
        )
        for r in conn.execute(
            "SELECT event_id, type, state, attempts, last_error, url, created_at, updated_at "
            "FROM outbox WHERE stream = ? ORDER BY id",
            (message_id,),
        )
    )  # fmt: skip
    return MessageHistory(
        message=message, batches=batches, attempts=attempts, reports=reports, webhooks=webhooks
    )


def recent_inbound(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    """Every key's inbound MMS, newest first (the console is an operator's view)."""
    cursor = conn.execute(
        f"SELECT {_INBOUND_COLUMNS} FROM inbound_messages "  # noqa: S608 - constant
        "ORDER BY received_at DESC, id DESC LIMIT ?",
        (limit,),
    )
    return [_inbound_dict(conn, tuple(r)) for r in cursor.fetchall()]


def replay_dead_letter(conn: sqlite3.Connection, event_id: str, now: float) -> bool:
    """Give a dead-lettered event a fresh set of attempts, due now; False if not dead."""
    cur = conn.execute(
        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, "
        "last_error = NULL, created_at = ?, updated_at = ? WHERE event_id = ? AND state = 'dead'",
        (now, now, now, event_id),
    )
    return cur.rowcount == 1
