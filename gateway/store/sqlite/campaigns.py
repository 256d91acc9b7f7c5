"""SQL of bulk sends (campaigns) once they are open: counts, paging, progress with its
``batch.status`` events, cancel (the intake is ``campaign_intake.py``).

A campaign is stored as ordinary messages, one per SubmitReq, so dispatch, reports and
retries need nothing of it; these functions read and move the campaign as a whole. They
run on both backends; on PostgreSQL several instances run them at once, so a status
moves only by a conditional ``UPDATE`` (see ``docs/ARCHITECTURE.md``, section 4b).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Final

from gateway.store.campaign_records import (
    ACTIVE_CAMPAIGN_STATES,
    CampaignRecipient,
    CampaignRecord,
    CancelPage,
    InvalidLine,
)
from gateway.store.records import FINAL_RECIPIENT_STATES, RECIPIENT_STATES, SMS_STATES
from gateway.store.sqlite.events import insert_event
from gateway.store.sqlite.messages import finish_batch
from gateway.store.sqlite.sms import cancel_queued
from gateway.store.transitions import aggregate_status

#: Campaign states in the order they are reached (the watcher never moves one back).
_RANK: Final = {"queued": 0, "sending": 1, "sent": 2, "completed": 3}
#: Message states that mean "accepted by the MMSC (or Kannel), no final word yet".
_PENDING: Final = ("submitted", "sms_queued", "sms_submitted")


def recipient_counts(conn: sqlite3.Connection, campaign_id: str) -> dict[str, int]:
    counts = dict.fromkeys(sorted(RECIPIENT_STATES), 0)
    for status, count in conn.execute(
        "SELECT r.status, COUNT(*) FROM messages m JOIN recipients r ON r.message_id = m.id "
        "WHERE m.campaign_id = ? GROUP BY r.status",
        (campaign_id,),
    ):
        counts[str(status)] = int(count)
    return counts


def load_campaign(conn: sqlite3.Connection, campaign_id: str) -> CampaignRecord | None:
    row = conn.execute(
        "SELECT id, api_key, status, events, callback_url, client_ref, recipients, "
        "invalid_count, invalid_json, created_at, updated_at FROM campaigns WHERE id = ?",
        (campaign_id,),
    ).fetchone()
    if row is None:
        return None
    return CampaignRecord(
        id=row[0],
        api_key=row[1],
        status=row[2],
        events=row[3],
        callback_url=row[4],
        client_ref=row[5],
        recipients=int(row[6]),
        counts=recipient_counts(conn, campaign_id),
        invalid_count=int(row[7]),
        invalid=tuple(InvalidLine(int(a), str(b), str(c)) for a, b, c in json.loads(row[8])),
        created_at=float(row[9]),
        updated_at=float(row[10]),
    )


def campaign_recipients(
    conn: sqlite3.Connection,
    campaign_id: str,
    status: str | None,
    after: tuple[int, int] | None,
    limit: int,
) -> list[CampaignRecipient]:
    """A page of recipients in campaign order, after the ``(seq, idx)`` cursor."""
    seq, idx = after or (0, -1)
    rows = conn.execute(
        "SELECT m.campaign_seq, r.idx, m.id, r.address, r.status, r.mm7_message_id, r.error, "
        "r.updated_at FROM messages m JOIN recipients r ON r.message_id = m.id "
        "WHERE m.campaign_id = ? AND (m.campaign_seq > ? OR (m.campaign_seq = ? AND r.idx > ?))"
        " AND (? IS NULL OR r.status = ?) ORDER BY m.campaign_seq, r.idx LIMIT ?",
        (campaign_id, seq, seq, idx, status, status, limit),
    ).fetchall()
    return [
        CampaignRecipient(
            seq=int(r[0]),
            idx=int(r[1]),
            message_id=r[2],
            to=r[3],
            status=r[4],
            mm7_message_id=r[5],
            error=r[6],
            updated_at=float(r[7]),
        )
        for r in rows
    ]


def cancel_campaign_page(
    conn: sqlite3.Connection, campaign_id: str, after: int, limit: int, now: float
) -> CancelPage:
    """Cancel the queued SubmitReqs of the next ``limit`` messages after ``after``.

    The first page marks the campaign ``canceled`` (one ``batch.status``). What is in
    flight or submitted is left alone: it has been sent.
    """
    # Conditional, so a concurrent cancel or progress change (which waits for this row's
    # lock, then sees the new status) does not announce a second change.
    if (
        after == 0
        and conn.execute(
            "UPDATE campaigns SET status = 'canceled', updated_at = ? WHERE id = ? "
            "AND status IN (?, ?, ?) RETURNING id",
            (now, campaign_id, *ACTIVE_CAMPAIGN_STATES),
        ).fetchone()
    ):
        campaign_event(conn, campaign_id, "canceled", now)
    page = conn.execute(
        "SELECT id, campaign_seq FROM messages WHERE campaign_id = ? AND campaign_seq > ? "
        "ORDER BY campaign_seq LIMIT ?",
        (campaign_id, after, limit),
    ).fetchall()
    if not page:
        return CancelPage(canceled=0, next_after=None)
    # The page's ids as a list, not a subquery: the plan is then an index lookup per id
    # whatever the statistics say (a campaign is often canceled before any ANALYZE saw it).
    ids = [str(r[0]) for r in page]
    # Lock the page's queued batches before their messages, in the order a claim takes
    # them (a claim skips locked batches; one that claimed first is waited for and its
    # batches are then no longer queued), so a SubmitReq ends claimed or canceled, never
    # both, and the two never wait for each other's locks.
    queued = conn.execute(
        "UPDATE batches SET updated_at = updated_at WHERE state = 'queued' "  # noqa: S608 - placeholders only
        f"AND message_id IN ({_marks(ids)}) RETURNING id, message_id",
        ids,
    ).fetchall()
    events = conn.execute("SELECT events FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
    if events is not None and events[0] == "batch":
        _cancel_batches(conn, [(int(b), str(m)) for b, m in queued], now)
    else:  # per-recipient events: each message's own, as any cancel writes them
        for batch_id, _ in sorted(queued):
            finish_batch(conn, int(batch_id), "canceled", "canceled", None, now, None)
    for (message_id,) in conn.execute(
        "SELECT DISTINCT message_id FROM sms_intents WHERE state = 'queued' "  # noqa: S608 - placeholders only
        f"AND message_id IN ({_marks(ids)})",
        ids,
    ).fetchall():
        cancel_queued(conn, str(message_id), now)
    last = int(page[-1][1])
    return CancelPage(canceled=len(queued), next_after=last if len(page) == limit else None)


def _marks(values: list[Any]) -> str:
    return ", ".join("?" for _ in values)


def _cancel_batches(conn: sqlite3.Connection, batches: list[tuple[int, str]], now: float) -> None:
    """``finish_batch(..., "canceled", ...)`` for many batches (locked, queued) in a few
    statements: what it does for a queued batch of a campaign without per-recipient
    events (no MessageID yet, so no early reports; no webhook; no SMS fallback for
    ``canceled``). On PostgreSQL each statement is a round trip: one batch at a time
    took about 1.4 ms, 140 s for 100,000."""
    if not batches:
        return
    ids = [b for b, _ in batches]
    messages = sorted({m for _, m in batches})
    lock = "UPDATE messages SET updated_at = updated_at WHERE id IN"
    conn.execute(f"{lock} ({_marks(messages)})", messages)
    conn.execute(
        "UPDATE batches SET state = 'canceled', claimed_by = NULL, lease_until = NULL, "  # noqa: S608 - placeholders only
        f"updated_at = ? WHERE id IN ({_marks(ids)})",
        (now, *ids),
    )
    unfinished = sorted(FINAL_RECIPIENT_STATES | SMS_STATES)
    conn.execute(
        "UPDATE recipients SET status = 'canceled', updated_at = ? "  # noqa: S608 - placeholders only
        f"WHERE batch_id IN ({_marks(ids)}) AND status NOT IN ({_marks(unfinished)})",
        (now, *ids, *unfinished),
    )
    statuses: dict[str, list[str]] = {}
    # By batch (a campaign message's recipients are all in its one batch): an integer
    # key, looked up by index even before PostgreSQL has statistics on a new table.
    for message_id, status in conn.execute(
        f"SELECT message_id, status FROM recipients WHERE batch_id IN ({_marks(ids)})",  # noqa: S608
        ids,
    ):
        statuses.setdefault(str(message_id), []).append(str(status))
    by_status: dict[str, list[str]] = {}
    for message_id, recipients in statuses.items():
        by_status.setdefault(aggregate_status(recipients), []).append(message_id)
    for status, ids_of in by_status.items():
        conn.execute(
            f"UPDATE messages SET status = ?, updated_at = ? WHERE id IN ({_marks(ids_of)})",  # noqa: S608
            (status, now, *ids_of),
        )


def campaign_event(conn: sqlite3.Connection, campaign_id: str, status: str, now: float) -> None:
    """Append ``batch.status`` (the campaign's webhook, else its API key's), if anyone
    listens; the campaign id is the event stream, so its events arrive in order."""
    row = conn.execute(
        "SELECT c.api_key, c.client_ref, COALESCE(c.callback_url, t.url), c.recipients "
        "FROM campaigns c LEFT JOIN webhook_targets t ON t.api_key = c.api_key WHERE c.id = ?",
        (campaign_id,),
    ).fetchone()
    if row is None or not row[2]:
        return
    insert_event(
        conn,
        event_type="batch.status",
        stream=campaign_id,
        api_key=row[0],
        url=row[2],
        data={
            "batch_id": campaign_id,
            "status": status,
            "client_ref": row[1],
            "recipients": int(row[3]),
            "counts": recipient_counts(conn, campaign_id),
        },
        now=now,
    )


def _derived_status(counts: dict[str, int]) -> str:
    """A campaign's state from its messages' states (one message per SubmitReq)."""
    working = {s: n for s, n in counts.items() if s != "rejected"}
    queued = working.get("queued", 0)
    if queued == 0:
        return "sent" if any(working.get(s, 0) for s in _PENDING) else "completed"
    return "sending" if sum(working.values()) > queued else "queued"


def campaign_progress(conn: sqlite3.Connection, now: float) -> list[tuple[str, str]]:
    """Move each active campaign to the state its messages imply (forward only), with its
    ``batch.status`` event; returns ``(campaign id, new state)`` of those that changed."""
    changed = []
    active = conn.execute(
        "SELECT id, status FROM campaigns WHERE status IN (?, ?, ?)", ACTIVE_CAMPAIGN_STATES
    ).fetchall()
    for campaign_id, status in active:
        counts = {
            str(s): int(n)
            for s, n in conn.execute(
                "SELECT status, COUNT(*) FROM messages WHERE campaign_id = ? GROUP BY status",
                (campaign_id,),
            )
        }
        new = _derived_status(counts)
        # Conditional: on a shared store every instance's watcher runs this; the second
        # to change a campaign waits for the first's row lock, then finds the status
        # moved and announces nothing.
        if (
            _RANK[new] > _RANK[status]
            and conn.execute(
                "UPDATE campaigns SET status = ?, updated_at = ? WHERE id = ? AND status = ? "
                "RETURNING id",
                (new, now, campaign_id, status),
            ).fetchone()
        ):
            campaign_event(conn, campaign_id, new, now)
            changed.append((str(campaign_id), new))
    return changed
