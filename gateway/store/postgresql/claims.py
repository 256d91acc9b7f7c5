"""Claims on a shared store: batches, webhook events and SMS intents taken with
``FOR UPDATE SKIP LOCKED`` under a lease (``claimed_by``, ``lease_until``).

A lease is renewed by its instance's heartbeat (``cluster.py``); one that ran out belongs
to a dead instance, and its work goes back to the queue (same batch, so the same
TransactionID) the next time anyone claims that route, or at start. A live peer's claim
is never taken. A batch whose cancel was requested is never claimed again: one a dead
instance left in flight ends ``canceled`` instead.

These functions run in one READ COMMITTED transaction each (every statement sees what
peers committed before it), with ``?`` placeholders (``connection.py``).
"""

from __future__ import annotations

import sqlite3
from typing import Final

from gateway.store.postgresql.connection import lock
from gateway.store.records import Batch, OutboxEvent, SmsJob
from gateway.store.sqlite.messages import cancel_if_requested, claim_rows
from gateway.store.sqlite.parts import parts_from_json

#: Why a dead instance's flagged batch ends canceled (its attempt's outcome is unknown).
INSTANCE_GONE: Final = "the instance holding the attempt stopped"


def recover_expired(conn: sqlite3.Connection, route: str | None, now: float, owner: str) -> int:
    """In-flight batches whose lease ran out (or held by ``owner``'s previous run) go back
    to the queue, due now; flagged ones end canceled. Returns how many were requeued."""
    rows = conn.execute(
        "SELECT id, cancel_requested FROM batches WHERE state = 'in_flight' "
        "AND (? IS NULL OR route = ?) AND (lease_until IS NULL OR lease_until < ? "
        "OR claimed_by = ?) ORDER BY id FOR UPDATE SKIP LOCKED",
        (route, route, now, owner),
    ).fetchall()
    requeue = []
    for batch_id, flagged in rows:
        if flagged:
            cancel_if_requested(conn, int(batch_id), now, INSTANCE_GONE)
        else:
            requeue.append(int(batch_id))
    conn.executemany(
        "UPDATE batches SET state = 'queued', next_attempt_at = ?, claimed_by = NULL, "
        "lease_until = NULL, updated_at = ? WHERE id = ? AND state = 'in_flight'",
        [(now, now, batch_id) for batch_id in requeue],
    )
    return len(requeue)


def requeue_at_start(conn: sqlite3.Connection, now: float, owner: str) -> int:
    """Start-up: expired leases and this instance's own old claims (never a live peer's);
    queued batches an older version left flagged end canceled, as on SQLite."""
    for (batch_id,) in conn.execute(
        "SELECT id FROM batches WHERE state = 'queued' AND cancel_requested = 1"
    ).fetchall():
        cancel_if_requested(conn, int(batch_id), now, "the gateway restarted during the attempt")
    return recover_expired(conn, None, now, owner)


def claim_due(
    conn: sqlite3.Connection,
    route: str,
    now: float,
    limit: int,
    *,
    max_in_flight: int | None,
    owner: str,
    lease_until: float,
) -> list[Batch]:
    """Claim up to ``limit`` due batches of ``route`` for ``owner``, never more than
    ``max_in_flight`` of the route in flight across the cluster."""
    # One claimer per route at a time: counting the route's in-flight batches and
    # claiming must not interleave with a peer's, or both would fill the same free slots.
    lock(conn, f"claim:{route}")
    # Owner "" matches nobody: at run time only expired leases are taken back.
    recover_expired(conn, route, now, "")
    if max_in_flight is not None:
        in_flight = conn.execute(
            "SELECT COUNT(*) FROM batches WHERE route = ? AND state = 'in_flight'", (route,)
        ).fetchone()[0]
        limit = min(limit, max_in_flight - int(in_flight))
        if limit <= 0:
            return []
    rows = conn.execute(
        "SELECT id, message_id, attempts, expires_at, transaction_id, sender FROM batches "
        "WHERE route = ? AND state = 'queued' AND next_attempt_at <= ? AND cancel_requested = 0 "
        "ORDER BY next_attempt_at, id LIMIT ? FOR UPDATE SKIP LOCKED",
        (route, now, limit),
    ).fetchall()
    return claim_rows(conn, route, now, rows, owner=owner, lease_until=lease_until)


def due_events(
    conn: sqlite3.Connection,
    now: float,
    limit: int,
    busy_streams: tuple[str, ...],
    *,
    owner: str,
    lease_until: float,
) -> list[OutboxEvent]:
    """Claim the oldest pending event of up to ``limit`` streams, each under a lease.

    Only a stream's head is taken, and not while a peer holds it (its lease is live), so
    one stream's events still go one at a time, in order, across instances.
    """
    rows = conn.execute(
        "SELECT o.id, o.event_id, o.type, o.stream, o.api_key, o.url, o.body, o.attempts, "
        "o.created_at FROM outbox o WHERE o.state = 'pending' AND o.next_attempt_at <= ? "
        # Its own claims too: an event it held back (busy destination) is not in
        # busy_streams any more when it asks again.
        "AND (o.lease_until IS NULL OR o.lease_until < ? OR o.claimed_by = ?) "
        "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.stream = o.stream "
        "AND p.state = 'pending' AND p.id < o.id) ORDER BY o.next_attempt_at, o.id LIMIT ? "
        "FOR UPDATE OF o SKIP LOCKED",
        (now, now, owner, limit + len(busy_streams)),
    ).fetchall()
    busy = set(busy_streams)
    events = [OutboxEvent(*r) for r in rows if r[3] not in busy][:limit]
    conn.executemany(
        "UPDATE outbox SET claimed_by = ?, lease_until = ? WHERE id = ?",
        [(owner, lease_until, e.id) for e in events],
    )
    return events


def next_event_at(conn: sqlite3.Connection) -> float | None:
    """When the next event may go: only stream heads can, a claimed one no earlier than
    its lease's end (so instances do not poll while a peer holds a stream)."""
    row = conn.execute(
        "SELECT MIN(GREATEST(o.next_attempt_at, COALESCE(o.lease_until, 0))) FROM outbox o "
        "WHERE o.state = 'pending' AND NOT EXISTS (SELECT 1 FROM outbox p "
        "WHERE p.stream = o.stream AND p.state = 'pending' AND p.id < o.id)"
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def claim_sms(
    conn: sqlite3.Connection, now: float, limit: int, *, owner: str, lease_until: float
) -> list[SmsJob]:
    """Due SMS intents to ``sending`` (attempt counted) under a lease, for ``owner``."""
    ids = [
        int(r[0])
        for r in conn.execute(
            "SELECT id FROM sms_intents WHERE state = 'queued' AND next_attempt_at <= ? "
            "ORDER BY next_attempt_at, id LIMIT ? FOR UPDATE SKIP LOCKED",
            (now, limit),
        ).fetchall()
    ]
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    rows = conn.execute(
        "SELECT i.id, i.message_id, i.cause, i.attempts + 1, r.address, m.sender, "  # noqa: S608 - placeholders only
        "COALESCE(b.route, m.route), m.subject, m.body_text, m.parts_json, m.expires_at "
        "FROM sms_intents i JOIN recipients r ON r.message_id = i.message_id AND r.idx = i.idx "
        "JOIN messages m ON m.id = i.message_id LEFT JOIN batches b ON b.id = r.batch_id "
        f"WHERE i.id IN ({marks}) ORDER BY i.next_attempt_at, i.id",
        ids,
    ).fetchall()
    conn.executemany(
        "UPDATE sms_intents SET state = 'sending', attempts = attempts + 1, claimed_by = ?, "
        "lease_until = ?, updated_at = ? WHERE id = ?",
        [(owner, lease_until, now, i) for i in ids],
    )
    return [
        SmsJob(
            id=int(r[0]), message_id=r[1], cause=r[2], attempts=int(r[3]), to=r[4], sender=r[5],
            route=r[6], subject=r[7], text=r[8], parts=parts_from_json(r[9]),
            expires_at=float(r[10]),
        )
        for r in rows
    ]  # fmt: skip


def requeue_sms_sending(conn: sqlite3.Connection, due: float, now: float, owner: str) -> int:
    """Start-up: intents left mid-call by a dead instance (lease ran out) or by this one's
    previous run wait ``due`` for a Kannel report; a live peer's calls are left alone."""
    return int(
        conn.execute(
            "UPDATE sms_intents SET state = 'queued', next_attempt_at = ?, claimed_by = NULL, "
            "lease_until = NULL, updated_at = ? WHERE state = 'sending' "
            "AND (lease_until IS NULL OR lease_until < ? OR claimed_by = ?)",
            (due, now, now, owner),
        ).rowcount
    )


def purge_pool_sends(conn: sqlite3.Connection, keep_seconds: float, limit: int) -> int:
    """``pools.purge_pool_sends`` without SQLite's rowid (PostgreSQL's ctid instead)."""
    cur = conn.execute(
        "DELETE FROM pool_sends WHERE ctid IN (SELECT ctid FROM pool_sends WHERE at < "
        "(SELECT MAX(at) FROM pool_sends) - ? LIMIT ?)",
        (keep_seconds, limit),
    )
    return max(cur.rowcount, 0)
