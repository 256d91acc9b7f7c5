"""SQL of the SMS fallback (DESIGN.md §13): route policies, intents, Kannel reports and
short links.

An intent (one SMS per recipient and cause, unique) is written by the same transaction
that makes the recipient fail, be rejected or expire, or by the one that stores a message
for a no-MMS route, so no fallback is lost to a crash and none is recorded twice. The
worker claims due intents (``queued`` -> ``sending``, attempt counted) before it calls
Kannel, and records the answer afterwards.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from gateway.store.records import ShortLink, SmsJob
from gateway.store.sqlite.events import message_status_event
from gateway.store.sqlite.locks import lock_message
from gateway.store.sqlite.parts import parts_from_json
from gateway.store.transitions import aggregate_status

#: MM7 outcomes that may send a recipient on to the SMS fallback (each is its own cause).
FALLBACK_STATES: Final = frozenset({"rejected", "failed", "expired"})
#: Kannel's report types: 1 delivered to the phone, 2 not delivered to the phone,
#: 4 queued at the SMSC, 8 accepted by the SMSC, 16 refused by the SMSC.
DLR_STATES: Final = {1: "delivered", 2: "failed", 16: "failed"}


def _refresh(conn: sqlite3.Connection, message_id: str, now: float) -> None:
    statuses = [
        str(r[0])
        for r in conn.execute("SELECT status FROM recipients WHERE message_id = ?", (message_id,))
    ]
    conn.execute(
        "UPDATE messages SET status = ?, updated_at = ? WHERE id = ?",
        (aggregate_status(statuses), now, message_id),
    )


def sync_routes(conn: sqlite3.Connection, causes: dict[str, tuple[str, ...]]) -> None:
    """Replace the per-route fallback causes with the configured ones."""
    conn.execute("DELETE FROM sms_routes")
    conn.executemany(
        "INSERT INTO sms_routes (route, causes) VALUES (?, ?)",
        [(route, ",".join(c)) for route, c in sorted(causes.items()) if c],
    )


def add_intents(
    conn: sqlite3.Connection, message_id: str, indexes: list[int], cause: str, due: float
) -> int:
    """Record one SMS intent per recipient for ``cause`` (nothing if already recorded)."""
    added = 0
    for idx in indexes:
        row = conn.execute(
            "INSERT INTO sms_intents (message_id, idx, cause, state, next_attempt_at, "
            "created_at, updated_at) VALUES (?, ?, ?, 'queued', ?, ?, ?) "
            "ON CONFLICT (message_id, idx, cause) DO NOTHING RETURNING id",
            (message_id, idx, cause, due, due, due),
        ).fetchone()
        added += row is not None
    return added


def fallback_after(
    conn: sqlite3.Connection,
    message_id: str,
    *,
    batch_id: int | None,
    indexes: list[int] | None,
    state: str,
    now: float,
) -> None:
    """Send recipients that just reached ``state`` on to SMS if their route says so."""
    if state not in FALLBACK_STATES:
        return
    where, args = (
        ("r.batch_id = ?", [batch_id])
        if batch_id is not None
        else (f"r.idx IN ({', '.join('?' for _ in indexes or [])})", list(indexes or []))
    )
    rows = conn.execute(
        "SELECT r.idx, s.causes FROM recipients r JOIN batches b ON b.id = r.batch_id "  # noqa: S608 - placeholders only
        f"JOIN sms_routes s ON s.route = b.route WHERE r.message_id = ? AND {where} "
        "AND r.status = ? AND r.updated_at = ?",
        (message_id, *args, state, now),
    ).fetchall()
    chosen = [int(idx) for idx, causes in rows if state in str(causes).split(",")]
    if not chosen or not add_intents(conn, message_id, chosen, state, now):
        return
    conn.executemany(
        "UPDATE recipients SET status = 'sms_queued', fallback = 'sms', updated_at = ? "
        "WHERE message_id = ? AND idx = ?",
        [(now, message_id, idx) for idx in chosen],
    )
    _refresh(conn, message_id, now)
    message_status_event(conn, message_id, chosen, now)


def cancel_queued(conn: sqlite3.Connection, message_id: str, now: float) -> None:
    """A cancel: SMS not yet handed to Kannel are not sent; their recipients are canceled."""
    indexes = [
        int(r[0])
        for r in conn.execute(
            "UPDATE sms_intents SET state = 'canceled', updated_at = ? "
            "WHERE message_id = ? AND state = 'queued' RETURNING idx",
            (now, message_id),
        )
    ]
    if not indexes:
        return
    conn.executemany(
        "UPDATE recipients SET status = 'canceled', updated_at = ? "
        "WHERE message_id = ? AND idx = ? AND status = 'sms_queued'",
        [(now, message_id, idx) for idx in indexes],
    )
    _refresh(conn, message_id, now)
    message_status_event(conn, message_id, indexes, now)


def claim(conn: sqlite3.Connection, now: float, limit: int) -> list[SmsJob]:
    """Due intents move to ``sending`` (attempt counted) and come back with their content."""
    rows = conn.execute(
        "SELECT i.id, i.message_id, i.cause, i.attempts + 1, r.address, m.sender, "
        "COALESCE(b.route, m.route), m.subject, m.body_text, m.parts_json, m.expires_at "
        "FROM sms_intents i JOIN recipients r ON r.message_id = i.message_id AND r.idx = i.idx "
        "JOIN messages m ON m.id = i.message_id LEFT JOIN batches b ON b.id = r.batch_id "
        "WHERE i.state = 'queued' AND i.next_attempt_at <= ? ORDER BY i.next_attempt_at, i.id "
        "LIMIT ?",
        (now, limit),
    ).fetchall()
    conn.executemany(
        "UPDATE sms_intents SET state = 'sending', attempts = attempts + 1, updated_at = ? "
        "WHERE id = ?",
        [(now, r[0]) for r in rows],
    )
    return [
        SmsJob(
            id=int(r[0]), message_id=r[1], cause=r[2], attempts=int(r[3]), to=r[4], sender=r[5],
            route=r[6], subject=r[7], text=r[8], parts=parts_from_json(r[9]),
            expires_at=float(r[10]),
        )
        for r in rows
    ]  # fmt: skip


def _recipient_of(conn: sqlite3.Connection, intent_id: int) -> tuple[str, int] | None:
    row = conn.execute(
        "SELECT message_id, idx FROM sms_intents WHERE id = ?", (intent_id,)
    ).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


def _move(
    conn: sqlite3.Connection, intent_id: int, status: str, error: str | None, now: float
) -> None:
    """The recipient of an intent to ``status`` while it still waits on the SMS path."""
    target = _recipient_of(conn, intent_id)
    if target is None:
        return
    message_id, idx = target
    lock_message(conn, message_id)
    changed = conn.execute(
        "UPDATE recipients SET status = ?, error = ?, updated_at = ? WHERE message_id = ? "
        "AND idx = ? AND status IN ('sms_queued', 'sms_submitted') AND status != ?",
        (status, error, now, message_id, idx, status),
    ).rowcount
    if changed:
        _refresh(conn, message_id, now)
        message_status_event(conn, message_id, [idx], now)


def sent(conn: sqlite3.Connection, intent_id: int, segments: int, coding: str, now: float) -> None:
    """Kannel accepted the SMS: the recipient is ``sms_submitted``."""
    conn.execute(
        "UPDATE sms_intents SET state = 'submitted', segments = ?, coding = ?, last_error = NULL, "
        "claimed_by = NULL, lease_until = NULL, updated_at = ? WHERE id = ? AND state = 'sending'",
        (segments, coding, now, intent_id),
    )
    _move(conn, intent_id, "sms_submitted", None, now)


def retry(conn: sqlite3.Connection, intent_id: int, next_at: float, error: str, now: float) -> None:
    conn.execute(
        "UPDATE sms_intents SET state = 'queued', next_attempt_at = ?, last_error = ?, "
        "claimed_by = NULL, lease_until = NULL, updated_at = ? WHERE id = ? AND state = 'sending'",
        (next_at, error, now, intent_id),
    )


def give_up(conn: sqlite3.Connection, intent_id: int, error: str, now: float) -> None:
    """No SMS could be handed to Kannel: the recipient is ``failed``."""
    conn.execute(
        "UPDATE sms_intents SET state = 'failed', last_error = ?, claimed_by = NULL, "
        "lease_until = NULL, updated_at = ? WHERE id = ? AND state = 'sending'",
        (error, now, intent_id),
    )
    _move(conn, intent_id, "failed", f"sms: {error}", now)


def requeue_sending(conn: sqlite3.Connection, due: float, now: float) -> int:
    """Start-up: intents a previous run left mid-call wait ``due`` for a Kannel report."""
    return conn.execute(
        "UPDATE sms_intents SET state = 'queued', next_attempt_at = ?, updated_at = ? "
        "WHERE state = 'sending'",
        (due, now),
    ).rowcount


def apply_dlr(conn: sqlite3.Connection, intent_id: int, dlr_type: int, now: float) -> str:
    """A Kannel report: ``unknown`` intent, else the recipient state it leaves."""
    row = conn.execute("SELECT state FROM sms_intents WHERE id = ?", (intent_id,)).fetchone()
    if row is None:
        return "unknown"
    # Any report proves Kannel has the SMS, even one for a call we saw time out or were
    # killed in: never send that intent again.
    final = DLR_STATES.get(dlr_type)
    state = "delivered" if final == "delivered" else "failed" if final else "submitted"
    if row[0] in ("queued", "sending", "submitted"):
        conn.execute(
            "UPDATE sms_intents SET state = ?, dlr_type = ?, updated_at = ? WHERE id = ?",
            (state, dlr_type, now, intent_id),
        )
    if final is None:
        _move(conn, intent_id, "sms_submitted", None, now)
    else:
        error = None if final == "delivered" else f"sms report: type {dlr_type}"
        _move(conn, intent_id, final, error, now)
    target = _recipient_of(conn, intent_id)
    current = conn.execute(
        "SELECT status FROM recipients WHERE message_id = ? AND idx = ?", target or ("", -1)
    ).fetchone()
    return str(current[0]) if current else "unknown"


def next_due(conn: sqlite3.Connection) -> float | None:
    row = conn.execute(
        "SELECT MIN(next_attempt_at) FROM sms_intents WHERE state = 'queued'"
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def short_link(
    conn: sqlite3.Connection, message_id: str, code: str, expires_at: float, now: float
) -> str:
    """The message's short code: the existing one, else ``code`` (one per message)."""
    conn.execute(
        "INSERT INTO short_links (code, message_id, expires_at, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (message_id) DO NOTHING",
        (code, message_id, expires_at, now),
    )
    row = conn.execute(
        "SELECT code FROM short_links WHERE message_id = ?", (message_id,)
    ).fetchone()
    return str(row[0])


def resolve(conn: sqlite3.Connection, code: str, now: float) -> ShortLink | None:
    row = conn.execute(
        "SELECT l.message_id, l.expires_at, m.parts_json FROM short_links l "
        "JOIN messages m ON m.id = l.message_id WHERE l.code = ? AND l.expires_at > ?",
        (code, now),
    ).fetchone()
    if row is None:
        return None
    return ShortLink(str(row[0]), parts_from_json(row[2]), float(row[1]))
