# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""SQL of the callbacks package, run on the store thread via ``store.write``/``store.read``.

Every function takes the store's ``sqlite3.Connection`` and runs inside the store's group
transaction, so a report, the recipient update it causes and the webhook event it emits
commit together or not at all (a transactional outbox). ``batch_status_changed`` is
called by ``gateway.store.sqlite`` whenever the dispatcher changes recipients' states.

Why one module past 500 lines: every statement against the tables of migration 2 lives
here, so the schema and all of its queries are reviewed side by side.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from gateway.callbacks.reports import HARD_FINAL, next_state, pick_recipient
from gateway.store.sqlite import aggregate_status


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


# -- events ------------------------------------------------------------------------------------


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
        {"id": event_id, "type": event_type, "created_at": iso(now), "data": data},
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
            "updated_at": iso(float(r[4])),
        }
        for r in conn.execute(
            "SELECT address, status, mm7_message_id, error, updated_at FROM recipients "  # noqa: S608 - placeholders only
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


def refresh_message_status(conn: sqlite3.Connection, message_id: str, now: float) -> str:
    statuses = [
        r[0]
        for r in conn.execute("SELECT status FROM recipients WHERE message_id = ?", (message_id,))
    ]
    status = aggregate_status(statuses)
    conn.execute(
        "UPDATE messages SET status = ?, updated_at = ? WHERE id = ?", (status, now, message_id)
    )
    return status


def batch_status_changed(
    conn: sqlite3.Connection,
    message_id: str,
    batch_id: int,
    state: str,
    now: float,
    mm7_message_id: str | None,
) -> None:
    """Hook for ``gateway.store.sqlite._finish_batch`` (same transaction as the change).

    Emits ``message.status`` for the recipients the batch update just changed, then
    applies reports that arrived for this batch's MM7 MessageID before its SubmitRsp was
    recorded (a fast MMSC's report can overtake our own commit).
    """
    changed = [
        int(r[0])
        for r in conn.execute(
            "SELECT idx FROM recipients WHERE batch_id = ? AND status = ? AND updated_at = ?",
            (batch_id, state, now),
        )
    ]
    message_status_event(conn, message_id, changed, now)
    if mm7_message_id is None:
        return
    early = conn.execute(
        "SELECT id FROM delivery_reports WHERE mm7_message_id = ? AND outcome = 'unmatched' "
        "ORDER BY id",
        (mm7_message_id,),
    ).fetchall()
    for (report_id,) in early:
        correlate_report(conn, int(report_id), now)


# -- delivery and read reports -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportRow:
    """A decoded DeliveryReportReq/ReadReplyReq, ready to store."""

    kind: str  # "delivery" | "read"
    mmsc: str
    dedupe_key: str
    mm7_message_id: str | None
    recipient: str | None
    sender: str | None
    mm_status: str | None
    mm_status_extension: str | None
    status_text: str | None
    mapped_state: str | None
    report_at: float
    received_at: float
    transaction_id: str | None


@dataclass(frozen=True, slots=True)
class ReportResult:
    #: ``applied``, ``unchanged``, ``stale``, ``unmatched`` or ``duplicate``.
    outcome: str
    message_id: str | None = None
    state: str | None = None
    #: When the message was accepted (for the report latency metric), if it correlated.
    accepted_at: float | None = None


_REPORT_COLUMNS: Final = (
    "kind, mmsc, dedupe_key, mm7_message_id, recipient, sender, mm_status, "
    "mm_status_extension, status_text, mapped_state, report_at, received_at, transaction_id"
)


def store_report(conn: sqlite3.Connection, report: ReportRow) -> ReportResult:
    """Store a report (idempotently) and apply it to its recipient if it correlates."""
    row = conn.execute(
        f"INSERT INTO delivery_reports ({_REPORT_COLUMNS}, outcome) "  # noqa: S608 - constant
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'unmatched') "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        (
            report.kind, report.mmsc, report.dedupe_key, report.mm7_message_id, report.recipient,
            report.sender, report.mm_status, report.mm_status_extension, report.status_text,
            report.mapped_state, report.report_at, report.received_at, report.transaction_id,
        ),
    ).fetchone()  # fmt: skip
    if row is None:  # the conflict: this exact report was stored before
        return ReportResult("duplicate")
    return correlate_report(conn, int(row[0]), report.received_at)


def correlate_report(conn: sqlite3.Connection, report_id: int, now: float) -> ReportResult:
    row = conn.execute(
        "SELECT kind, mm7_message_id, recipient, sender, mm_status, mm_status_extension, "
        "status_text, mapped_state, report_at FROM delivery_reports WHERE id = ?",
        (report_id,),
    ).fetchone()
    kind, mm7_id, recipient, sender, mm_status, extension, text, mapped, report_at = row
    candidates = [
        (str(r[0]), int(r[1]), str(r[2]))
        for r in conn.execute(
            "SELECT message_id, idx, address FROM recipients WHERE mm7_message_id = ?", (mm7_id,)
        )
    ] if mm7_id else []  # fmt: skip
    target = pick_recipient(candidates, (recipient, sender))
    if target is None:
        return ReportResult("unmatched")
    message_id, idx = target
    current, latest = conn.execute(
        "SELECT r.status, (SELECT MAX(d.report_at) FROM delivery_reports d WHERE "
        "d.message_id = r.message_id AND d.recipient_idx = r.idx AND d.outcome = 'applied') "
        "FROM recipients r WHERE r.message_id = ? AND r.idx = ?",
        (message_id, idx),
    ).fetchone()
    new = next_state(current, latest, mapped, float(report_at))
    if new is None:
        stale = current not in HARD_FINAL and latest is not None and report_at < latest
        outcome = "stale" if stale else "unchanged"
    else:
        outcome = "applied"
        error = None if new in ("delivered", "read", "submitted") else f"{kind} report: {mm_status}"
        conn.execute(
            "UPDATE recipients SET status = ?, error = ?, updated_at = ? "
            "WHERE message_id = ? AND idx = ?",
            (new, error, now, message_id, idx),
        )
        refresh_message_status(conn, message_id, now)
    conn.execute(
        "UPDATE delivery_reports SET message_id = ?, recipient_idx = ?, outcome = ? WHERE id = ?",
        (message_id, idx, outcome, report_id),
    )
    if outcome == "applied":
        report = {
            "kind": kind,
            "mm_status": mm_status,
            "mm_status_extension": extension,
            "status_text": text,
            "date": iso(float(report_at)),
        }
        message_status_event(conn, message_id, [idx], now, report)
    accepted = conn.execute(
        "SELECT created_at FROM messages WHERE id = ?", (message_id,)
    ).fetchone()
    return ReportResult(
        outcome, message_id, new or current, float(accepted[0]) if accepted else None
    )


def report_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Reports per outcome (for tests and diagnostics)."""
    return {
        str(o): int(n)
        for o, n in conn.execute("SELECT outcome, COUNT(*) FROM delivery_reports GROUP BY outcome")
    }


# -- inbound messages ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundPart:
    content_type: str
    sha256: str
    size: int
    content_id: str | None
    content_location: str | None
    charset: str | None
    text: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundRow:
    id: str
    mmsc: str
    dedupe_key: str
    api_key: str | None
    sender: str | None
    recipient: str | None
    recipients: tuple[str, ...]
    subject: str | None
    text: str | None
    linked_id: str | None
    transaction_id: str | None
    optout: str | None
    sent_at: float | None
    received_at: float
    parts: tuple[InboundPart, ...]


def store_inbound(
    conn: sqlite3.Connection,
    row: InboundRow,
    event: tuple[str, dict[str, Any]] | None,
) -> tuple[str, bool]:
    """Store an inbound MMS (idempotently), its opt-out effect and its webhook event.

    Args:
        event: ``(url, data)`` of the ``message.inbound`` event, or ``None``.

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
        "sent_at": iso(r[11]),
        "received_at": iso(r[12]),
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


# -- suppressions ------------------------------------------------------------------------------


def suppression_key(number: str) -> str:
    """Numbers are compared on digits (``+8210…`` == ``8210…``); other ids verbatim."""
    digits = "".join(ch for ch in number if ch.isdigit())
    return digits or number.strip().lower()


def set_suppression(
    conn: sqlite3.Connection, number: str, short_code: str, action: str, now: float
) -> None:
    """``action`` is ``stop`` (suppress the pair) or ``start`` (lift it)."""
    key, code = suppression_key(number), suppression_key(short_code)
    if action == "stop":
        conn.execute(
            "INSERT INTO suppressions (number, short_code, keyword, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (number, short_code) DO NOTHING",
            (key, code, action, now),
        )
    else:
        conn.execute("DELETE FROM suppressions WHERE number = ? AND short_code = ?", (key, code))


def suppressed_numbers(conn: sqlite3.Connection, pairs: list[tuple[str, str]]) -> list[str]:
    """The numbers of ``(number, sender)`` pairs that are on the suppression list."""
    out = []
    for number, sender in pairs:
        row = conn.execute(
            "SELECT 1 FROM suppressions WHERE number = ? AND short_code = ?",
            (suppression_key(number), suppression_key(sender)),
        ).fetchone()
        if row is not None:
            out.append(number)
    return out


# -- outbox ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: int
    event_id: str
    event_type: str
    stream: str
    api_key: str | None
    url: str
    body: str
    attempts: int
    created_at: float


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
        "UPDATE outbox SET state = ?, attempts = attempts + 1, last_error = ?, updated_at = ? "
        "WHERE id = ?",
        (state, error, now, row_id),
    )


def retry_event(
    conn: sqlite3.Connection, row_id: int, next_at: float, error: str, now: float
) -> None:
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, "
        "updated_at = ? WHERE id = ?",
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
            "created_at": iso(r[6]),
            "dead_at": iso(r[7]),
            "event": json.loads(r[8]),
        }
        for r in rows
    ]


def outbox_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {
        str(s): int(n) for s, n in conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state")
    }
