"""SQL of retention: delete what is final and older than the cutoff, a chunk at a time.

Each call deletes at most ``limit`` rows of its kind in one short transaction, so the
queue's own operations (which share the store thread and its group commits) never wait
long. A message goes only once it is final *and* none of its webhook events is still
pending: an application still owed an event keeps its message until it got it or the
event was dead-lettered.
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Final

from gateway.store.records import FINAL_RECIPIENT_STATES

_FINAL: Final = tuple(sorted(FINAL_RECIPIENT_STATES))
_DIGEST: Final = re.compile(r"\b[0-9a-f]{64}\b")


def _marks(values: tuple[object, ...] | list[str]) -> str:
    return ", ".join("?" for _ in values)


def purge_messages(conn: sqlite3.Connection, cutoff: float, limit: int) -> int:
    """Final messages last changed before ``cutoff``, with everything that hangs off them."""
    ids = [
        str(r[0])
        for r in conn.execute(
            "SELECT m.id FROM messages m WHERE m.updated_at < ? "  # noqa: S608 - placeholders only
            # A campaign's messages go with their campaign (purge_campaigns).
            f"AND m.status IN ({_marks(_FINAL)}) AND m.campaign_id IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM outbox o WHERE o.stream = m.id AND o.state = 'pending') "
            "ORDER BY m.updated_at LIMIT ?",
            (cutoff, *_FINAL, limit),
        )
    ]
    _delete_messages(conn, ids)
    return len(ids)


def _delete_messages(conn: sqlite3.Connection, ids: list[str]) -> None:
    """Messages with everything that hangs off them."""
    if not ids:
        return
    marks = _marks(ids)
    for statement in (
        f"DELETE FROM delivery_reports WHERE message_id IN ({marks})",  # noqa: S608
        f"DELETE FROM submit_attempts WHERE message_id IN ({marks})",  # noqa: S608
        f"DELETE FROM sms_intents WHERE message_id IN ({marks})",  # noqa: S608
        f"DELETE FROM short_links WHERE message_id IN ({marks})",  # noqa: S608
        f"DELETE FROM outbox WHERE stream IN ({marks})",  # noqa: S608
        f"DELETE FROM recipients WHERE message_id IN ({marks})",  # noqa: S608
        f"DELETE FROM batches WHERE message_id IN ({marks})",  # noqa: S608
        f"DELETE FROM messages WHERE id IN ({marks})",  # noqa: S608
    ):
        conn.execute(statement, ids)


def purge_campaigns(conn: sqlite3.Connection, cutoff: float, limit: int) -> int:
    """A finished bulk send (completed or canceled) last changed before ``cutoff``, every
    message of it final and old, no event owed to anyone: up to ``limit`` of its messages
    with what hangs off them, then the campaign row and its events. Returns rows removed
    (messages, and 1 for the campaign).

    Campaign messages are purged only this way, whole campaigns at a time, so a
    campaign's counts never shrink while it can still be read.
    """
    row = conn.execute(
        "SELECT c.id FROM campaigns c WHERE c.status IN ('completed', 'canceled') "  # noqa: S608 - placeholders only
        "AND c.updated_at < ? AND NOT EXISTS "
        "(SELECT 1 FROM outbox o WHERE o.stream = c.id AND o.state = 'pending') "
        "AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.campaign_id = c.id AND "
        f"(m.status NOT IN ({_marks(_FINAL)}) OR m.updated_at >= ? OR EXISTS (SELECT 1 FROM "
        "outbox o WHERE o.stream = m.id AND o.state = 'pending'))) "
        "ORDER BY c.updated_at LIMIT 1",
        (cutoff, *_FINAL, cutoff),
    ).fetchone()
    if row is None:
        return 0
    campaign_id = str(row[0])
    ids = [
        str(r[0])
        for r in conn.execute(
            "SELECT id FROM messages WHERE campaign_id = ? LIMIT ?", (campaign_id, limit)
        )
    ]
    _delete_messages(conn, ids)
    if len(ids) == limit:
        return len(ids)
    conn.execute("DELETE FROM outbox WHERE stream = ?", (campaign_id,))
    conn.execute("DELETE FROM campaigns WHERE id = ?", (campaign_id,))
    return len(ids) + 1


def purge_inbound(conn: sqlite3.Connection, cutoff: float, limit: int) -> int:
    ids = [
        str(r[0])
        for r in conn.execute(
            "SELECT i.id FROM inbound_messages i WHERE i.received_at < ? AND NOT EXISTS "
            "(SELECT 1 FROM outbox o WHERE o.stream = i.id AND o.state = 'pending') "
            "ORDER BY i.received_at LIMIT ?",
            (cutoff, limit),
        )
    ]
    if not ids:
        return 0
    marks = _marks(ids)
    conn.execute(f"DELETE FROM outbox WHERE stream IN ({marks})", ids)  # noqa: S608
    conn.execute(f"DELETE FROM inbound_parts WHERE inbound_id IN ({marks})", ids)  # noqa: S608
    conn.execute(f"DELETE FROM inbound_messages WHERE id IN ({marks})", ids)  # noqa: S608
    return len(ids)


def purge_events(conn: sqlite3.Connection, cutoff: float, limit: int) -> int:
    """Delivered and dead-lettered webhook events (dead letters stay until the cutoff)."""
    cur = conn.execute(
        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE state IN "
        "('delivered', 'dead') AND updated_at < ? LIMIT ?)",
        (cutoff, limit),
    )
    return max(cur.rowcount, 0)


def purge_unmatched_reports(conn: sqlite3.Connection, cutoff: float, limit: int) -> int:
    """Reports that never found their message (and duplicates' survivors of old messages)."""
    cur = conn.execute(
        "DELETE FROM delivery_reports WHERE id IN (SELECT id FROM delivery_reports "
        "WHERE received_at < ? AND message_id IS NULL LIMIT ?)",
        (cutoff, limit),
    )
    return max(cur.rowcount, 0)


def media_in_use(conn: sqlite3.Connection, digests: list[str], created_before: float) -> set[str]:
    """Which of ``digests`` something kept still refers to.

    Callers only ask about media files untouched since ``created_before`` (the media store
    refreshes a file's time whenever a new message stores it again), so only inbound
    parts and messages older than that which are not final yet can refer to them.
    """
    if not digests:
        return set()
    used = {
        str(r[0])
        for r in conn.execute(
            f"SELECT DISTINCT sha256 FROM inbound_parts WHERE sha256 IN ({_marks(digests)})",  # noqa: S608
            digests,
        )
    }
    wanted = set(digests)
    for parts_json, text in conn.execute(
        "SELECT parts_json, body_text FROM messages WHERE status IN ('queued', 'submitted') "
        "AND created_at < ?",
        (created_before,),
    ):
        used.update(p["sha256"] for p in json.loads(parts_json) if p.get("sha256") in wanted)
        # A link fallback names its media only in the text (the signed URL).
        used.update(d for d in _DIGEST.findall(text or "") if d in wanted)
    return used
