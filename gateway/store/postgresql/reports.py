"""PostgreSQL SQL of delivery and read reports: stored idempotently, correlated to their
recipient and applied under ``gateway.store.transitions`` in one transaction with the
webhook event they cause; reports that overtake the SubmitRsp wait ``unmatched``.
"""

from __future__ import annotations

from typing import Final

from gateway.store.postgresql.connection import Conn, lock_message, lock_mm7_message_id
from gateway.store.postgresql.events import message_status_event
from gateway.store.records import ReportResult, ReportRow
from gateway.store.rows import report_decision, report_payload
from gateway.store.transitions import aggregate_status, pick_recipient


def refresh_message_status(conn: Conn, message_id: str, now: float) -> str:
    """Recompute a message's status; the caller holds ``lock_message``."""
    statuses = [
        str(r[0])
        for r in conn.execute(
            "SELECT status FROM recipients WHERE message_id = %s", (message_id,)
        ).fetchall()
    ]
    status = aggregate_status(statuses)
    conn.execute(
        "UPDATE messages SET status = %s, updated_at = %s WHERE id = %s",
        (status, now, message_id),
    )
    return status


def batch_status_changed(
    conn: Conn, message_id: str, batch_id: int, state: str, now: float, mm7_message_id: str | None
) -> None:
    """Emit ``message.status`` for the batch's changed recipients, then apply the reports
    that arrived for its MM7 MessageID before the SubmitRsp was recorded."""
    changed = [
        int(r[0])
        for r in conn.execute(
            "SELECT idx FROM recipients WHERE batch_id = %s AND status = %s AND updated_at = %s",
            (batch_id, state, now),
        ).fetchall()
    ]
    message_status_event(conn, message_id, changed, now)
    if mm7_message_id is None:
        return
    early = conn.execute(
        "SELECT id FROM delivery_reports WHERE mm7_message_id = %s AND outcome = 'unmatched' "
        "ORDER BY id",
        (mm7_message_id,),
    ).fetchall()
    for (report_id,) in early:
        correlate_report(conn, int(report_id), now)


_REPORT_COLUMNS: Final = (
    "kind, mmsc, dedupe_key, mm7_message_id, recipient, sender, mm_status, "
    "mm_status_extension, status_text, mapped_state, report_at, received_at, transaction_id"
)


def store_report(conn: Conn, report: ReportRow) -> ReportResult:
    """Store a report (insert-or-nothing on its dedupe key) and apply it if it correlates."""
    if report.mm7_message_id:
        lock_mm7_message_id(conn, report.mm7_message_id)
    row = conn.execute(
        f"INSERT INTO delivery_reports ({_REPORT_COLUMNS}, outcome) "  # noqa: S608 - constant
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'unmatched') "
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


def correlate_report(conn: Conn, report_id: int, now: float) -> ReportResult:
    row = conn.execute(
        "SELECT kind, mm7_message_id, recipient, sender, mm_status, mm_status_extension, "
        "status_text, mapped_state, report_at FROM delivery_reports WHERE id = %s",
        (report_id,),
    ).fetchone()
    assert row is not None  # noqa: S101 - inserted or selected by id in this transaction
    kind, mm7_id, recipient, sender, mm_status, extension, text, mapped, report_at = row
    candidates = [
        (str(r[0]), int(r[1]), str(r[2]))
        for r in conn.execute(
            "SELECT message_id, idx, address FROM recipients WHERE mm7_message_id = %s",
            (mm7_id,),
        ).fetchall()
    ] if mm7_id else []  # fmt: skip
    target = pick_recipient(candidates, (recipient, sender))
    if target is None:
        return ReportResult("unmatched")
    message_id, idx = target
    lock_message(conn, message_id)
    state = conn.execute(
        "SELECT r.status, (SELECT MAX(d.report_at) FROM delivery_reports d WHERE "
        "d.message_id = r.message_id AND d.recipient_idx = r.idx AND d.outcome = 'applied') "
        "FROM recipients r WHERE r.message_id = %s AND r.idx = %s",
        (message_id, idx),
    ).fetchone()
    assert state is not None  # noqa: S101 - the recipient was just found
    current, latest = state
    new, outcome, error = report_decision(
        current, latest, mapped, float(report_at), kind, mm_status
    )
    if new is not None:
        conn.execute(
            "UPDATE recipients SET status = %s, error = %s, updated_at = %s "
            "WHERE message_id = %s AND idx = %s",
            (new, error, now, message_id, idx),
        )
        refresh_message_status(conn, message_id, now)
    conn.execute(
        "UPDATE delivery_reports SET message_id = %s, recipient_idx = %s, outcome = %s "
        "WHERE id = %s",
        (message_id, idx, outcome, report_id),
    )
    if outcome == "applied":
        report = report_payload(kind, mm_status, extension, text, float(report_at))
        message_status_event(conn, message_id, [idx], now, report)
    accepted = conn.execute(
        "SELECT created_at FROM messages WHERE id = %s", (message_id,)
    ).fetchone()
    return ReportResult(
        outcome, message_id, new or current, float(accepted[0]) if accepted else None
    )


def report_counts(conn: Conn) -> dict[str, int]:
    """Reports per outcome (for tests and diagnostics)."""
    return {
        str(o): int(n)
        for o, n in conn.execute(
            "SELECT outcome, COUNT(*) FROM delivery_reports GROUP BY outcome"
        ).fetchall()
    }
