"""SQL of delivery and read reports: stored idempotently, correlated to their recipient
and applied under ``gateway.store.transitions`` in one transaction with the webhook event
they cause. Reports that overtake our own record of the SubmitRsp are kept ``unmatched``
and applied by ``batch_status_changed`` when the batch is marked submitted.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from gateway.store.records import ReportResult, ReportRow, iso_time
from gateway.store.sqlite.events import message_status_event
from gateway.store.sqlite.locks import lock_message
from gateway.store.sqlite.sms import fallback_after
from gateway.store.transitions import HARD_FINAL, aggregate_status, next_state, pick_recipient


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
    *,
    changed: list[int] | None = None,
) -> None:
    """Hook for ``gateway.store.sqlite._finish_batch`` (same transaction as the change).

    Emits ``message.status`` for the recipients the batch update just changed, then
    applies reports that arrived for this batch's MM7 MessageID before its SubmitRsp was
    recorded (a fast MMSC's report can overtake our own commit). ``changed``: the indexes
    of those recipients when the caller has them (the UPDATE's RETURNING), else found here.
    """
    if changed is None:
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
    # Only reports from the MMSC this batch went to: another route's credentials never
    # change this route's messages, even when the MessageIDs collide.
    early = conn.execute(
        "SELECT id FROM delivery_reports WHERE mm7_message_id = ? AND outcome = 'unmatched' "
        "AND mmsc = (SELECT route FROM batches WHERE id = ?) ORDER BY id",
        (mm7_message_id, batch_id),
    ).fetchall()
    for (report_id,) in early:
        correlate_report(conn, int(report_id), now)


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
        "status_text, mapped_state, report_at, mmsc FROM delivery_reports WHERE id = ?",
        (report_id,),
    ).fetchone()
    kind, mm7_id, recipient, sender, mm_status, extension, text, mapped, report_at, mmsc = row
    # Matched within the route the report authenticated as (its batch's route): a report
    # for another carrier's MessageID stays unmatched and never touches that message.
    candidates = [
        (str(r[0]), int(r[1]), str(r[2]))
        for r in conn.execute(
            "SELECT r.message_id, r.idx, r.address FROM recipients r "
            "JOIN batches b ON b.id = r.batch_id WHERE r.mm7_message_id = ? AND b.route = ?",
            (mm7_id, mmsc),
        )
    ] if mm7_id else []  # fmt: skip
    target = pick_recipient(candidates, (recipient, sender))
    if target is None:
        return ReportResult("unmatched")
    message_id, idx = target
    lock_message(conn, message_id)
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
            "date": iso_time(float(report_at)),
        }
        message_status_event(conn, message_id, [idx], now, report)
        fallback_after(conn, message_id, batch_id=None, indexes=[idx], state=str(new), now=now)
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
