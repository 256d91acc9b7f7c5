"""PostgreSQL SQL of outbound messages, recipients and submission batches: creation,
claims with leases, state changes and cancels, each inside one store transaction.

Claims take due batches with ``FOR UPDATE SKIP LOCKED``, so instances sharing the
database never claim one batch twice, and stamp them with the claiming instance and a
lease. A batch whose lease ran out (its instance died) is due again with the same
TransactionID. Every batch state change also writes the ``message.status`` event and
applies reports that overtook the SubmitRsp (``reports.batch_status_changed``).
"""

from __future__ import annotations

from gateway.errors import IdempotencyConflict, StoreError
from gateway.store.postgresql.connection import (
    Conn,
    executemany,
    lock_message,
    lock_mm7_message_id,
)
from gateway.store.postgresql.reports import batch_status_changed, refresh_message_status
from gateway.store.records import (
    FINAL_RECIPIENT_STATES,
    Batch,
    CancelPlan,
    MessageRecord,
    NewMessage,
    ReplacePlan,
)
from gateway.store.rows import (
    MESSAGE_COLUMNS,
    MESSAGE_INSERT_COLUMNS,
    RECIPIENT_COLUMNS,
    message_from_row,
    message_values,
    new_message_record,
    plan_batches,
)

_FINAL = sorted(FINAL_RECIPIENT_STATES)


def create_message(conn: Conn, new: NewMessage) -> tuple[MessageRecord, bool]:
    if new.idempotency_key is not None:
        found = find_idempotent(conn, new.api_key, new.idempotency_key)
        if found is not None:
            existing, request_hash = found
            if request_hash != new.request_hash:
                raise IdempotencyConflict(
                    "Idempotency-Key was already used with a different request"
                )
            return existing, False
    # A concurrent duplicate on another connection makes this INSERT fail on the unique
    # index; the store runs the operation again, which then finds the winner's message.
    conn.execute(
        f"INSERT INTO messages ({MESSAGE_INSERT_COLUMNS}, status, attempts) VALUES "  # noqa: S608 - constant columns
        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "'queued', 0)",
        message_values(new),
    )
    recipient_rows: list[tuple[str, int, str, int, float]] = []
    for route, transaction_id, members in plan_batches(new):
        row = conn.execute(
            "INSERT INTO batches (message_id, route, state, attempts, next_attempt_at, "
            "expires_at, transaction_id, created_at, updated_at) "
            "VALUES (%s, %s, 'queued', 0, %s, %s, %s, %s, %s) RETURNING id",
            (new.id, route, new.send_at, new.expires_at, transaction_id, new.created_at,
             new.created_at),
        ).fetchone()  # fmt: skip
        assert row is not None  # noqa: S101 - INSERT ... RETURNING
        recipient_rows.extend(
            (new.id, idx, address, int(row[0]), new.created_at) for idx, address in members
        )
    executemany(
        conn,
        "INSERT INTO recipients (message_id, idx, address, status, batch_id, updated_at) "
        "VALUES (%s, %s, %s, 'queued', %s, %s)",
        recipient_rows,
    )
    return new_message_record(new), True


def load_message(conn: Conn, message_id: str) -> MessageRecord | None:
    row = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = %s",  # noqa: S608 - constant columns
        (message_id,),
    ).fetchone()
    if row is None:
        return None
    recipients = conn.execute(
        f"SELECT {RECIPIENT_COLUMNS} FROM recipients WHERE message_id = %s ORDER BY idx",  # noqa: S608 - constant columns
        (message_id,),
    ).fetchall()
    return message_from_row(row, recipients)


def find_idempotent(
    conn: Conn, api_key: str, idempotency_key: str
) -> tuple[MessageRecord, str | None] | None:
    row = conn.execute(
        "SELECT id, request_hash FROM messages WHERE api_key = %s AND idempotency_key = %s",
        (api_key, idempotency_key),
    ).fetchone()
    if row is None:
        return None
    record = load_message(conn, row[0])
    if record is None:  # pragma: no cover - same transaction
        raise StoreError("idempotent message vanished")
    return record, row[1]


def claim_due(
    conn: Conn, route: str, now: float, limit: int, owner: str, lease_until: float
) -> list[Batch]:
    """Claim up to ``limit`` due batches of ``route`` for ``owner`` until ``lease_until``.

    Due: queued and past its time, or in flight under a lease that ran out (its instance
    died; the attempt it used stays counted). A batch whose cancel was requested is never
    claimed again: one left in flight by a dead instance is canceled instead.
    """
    cancel_abandoned(conn, route, now)
    rows = conn.execute(
        "WITH picked AS (SELECT id FROM batches WHERE route = %s AND cancel_requested = 0 "
        "AND ((state = 'queued' AND next_attempt_at <= %s) "
        "OR (state = 'in_flight' AND (lease_until IS NULL OR lease_until < %s))) "
        "ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED) "
        "UPDATE batches b SET state = 'in_flight', attempts = b.attempts + 1, "
        "claimed_by = %s, lease_until = %s, updated_at = %s FROM picked WHERE b.id = picked.id "
        "RETURNING b.id, b.message_id, b.attempts, b.expires_at, b.transaction_id, "
        "b.next_attempt_at",
        (route, now, now, limit, owner, lease_until, now),
    ).fetchall()
    if not rows:
        return []
    rows.sort(key=lambda r: (float(r[5]), int(r[0])))
    addresses: dict[int, list[str]] = {}
    for batch_id, address in conn.execute(
        "SELECT batch_id, address FROM recipients WHERE batch_id = ANY(%s) ORDER BY idx",
        ([int(r[0]) for r in rows],),
    ).fetchall():
        addresses.setdefault(int(batch_id), []).append(str(address))
    batches = [
        Batch(
            id=int(batch_id),
            message_id=str(message_id),
            route=route,
            attempts=int(attempts),
            recipients=tuple(addresses.get(int(batch_id), ())),
            expires_at=float(expires_at),
            # The batch's own TransactionID for every attempt, also after a lease expiry.
            transaction_id=str(transaction_id),
        )
        for batch_id, message_id, attempts, expires_at, transaction_id, _due in rows
    ]
    # Sorted, so two claims touching the same messages lock them in the same order.
    for message_id in sorted({b.message_id for b in batches}):
        count = sum(1 for b in batches if b.message_id == message_id)
        conn.execute(
            "UPDATE messages SET attempts = attempts + %s, updated_at = %s WHERE id = %s",
            (count, now, message_id),
        )
    return batches


def cancel_abandoned(conn: Conn, route: str | None, now: float) -> int:
    """Cancel in-flight batches with a cancel request whose lease ran out."""
    ids = conn.execute(
        "SELECT id FROM batches WHERE (%s::text IS NULL OR route = %s) AND state = 'in_flight' "
        "AND cancel_requested = 1 AND (lease_until IS NULL OR lease_until < %s) "
        "ORDER BY id FOR UPDATE SKIP LOCKED",
        (route, route, now),
    ).fetchall()
    for (batch_id,) in ids:
        finish_batch(conn, int(batch_id), "canceled", "canceled", None, now, None)
    return len(ids)


def requeue_expired(conn: Conn, now: float) -> int:
    """Crash recovery: in-flight batches whose lease ran out are due again now.

    Only expired leases: a live peer's claimed work is never touched.
    """
    cancel_abandoned(conn, None, now)
    cur = conn.execute(
        "UPDATE batches SET state = 'queued', next_attempt_at = %s, claimed_by = NULL, "
        "lease_until = NULL, updated_at = %s WHERE id IN (SELECT id FROM batches "
        "WHERE state = 'in_flight' AND cancel_requested = 0 "
        "AND (lease_until IS NULL OR lease_until < %s) FOR UPDATE SKIP LOCKED)",
        (now, now, now),
    )
    return cur.rowcount


def requeue_own(
    conn: Conn, batch_ids: list[int], owner: str, now: float, next_at: float | None,
    error: str | None, refund: int,
) -> None:
    """Hand batches this instance holds back to the queue (a retry or a shutdown).

    ``owner`` guards against a lease that ran out meanwhile: the batch then belongs to
    whoever claimed it since, and stays theirs.
    """
    executemany(
        conn,
        "UPDATE batches SET state = 'queued', next_attempt_at = COALESCE(%s, next_attempt_at), "
        "last_error = COALESCE(%s, last_error), attempts = attempts - %s, claimed_by = NULL, "
        "lease_until = NULL, updated_at = %s "
        "WHERE id = %s AND state = 'in_flight' AND claimed_by = %s",
        [(next_at, error, refund, now, batch_id, owner) for batch_id in batch_ids],
    )  # fmt: skip


def finish_batch(
    conn: Conn,
    batch_id: int,
    batch_state: str,
    recipient_state: str,
    error: str | None,
    now: float,
    mm7_message_id: str | None,
) -> bool:
    """Move a batch and its unfinished recipients to a state; True if a cancel is pending."""
    if mm7_message_id is not None:
        lock_mm7_message_id(conn, mm7_message_id)
    row = conn.execute(
        "SELECT message_id, cancel_requested, mm7_message_id FROM batches WHERE id = %s "
        "FOR UPDATE",
        (batch_id,),
    ).fetchone()
    if row is None:
        raise StoreError(f"no batch {batch_id}")
    message_id = str(row[0])
    lock_message(conn, message_id)
    conn.execute(
        "UPDATE batches SET state = %s, mm7_message_id = COALESCE(%s, mm7_message_id), "
        "last_error = COALESCE(%s, last_error), claimed_by = NULL, lease_until = NULL, "
        "updated_at = %s WHERE id = %s",
        (batch_state, mm7_message_id, error, now, batch_id),
    )
    conn.execute(
        "UPDATE recipients SET status = %s, mm7_message_id = COALESCE(%s, mm7_message_id), "
        "error = COALESCE(%s, error), updated_at = %s "
        "WHERE batch_id = %s AND NOT (status = ANY(%s))",
        (recipient_state, mm7_message_id, error, now, batch_id, _FINAL),
    )
    if error is not None:
        conn.execute("UPDATE messages SET last_error = %s WHERE id = %s", (error, message_id))
    refresh_message_status(conn, message_id, now)
    batch_status_changed(conn, message_id, batch_id, recipient_state, now, mm7_message_id or row[2])
    return bool(row[1])


def cancel_message(conn: Conn, message_id: str, now: float) -> CancelPlan:
    if conn.execute("SELECT 1 FROM messages WHERE id = %s", (message_id,)).fetchone() is None:
        return CancelPlan(found=False)
    lock_message(conn, message_id)
    queued = conn.execute(
        "SELECT id FROM batches WHERE message_id = %s AND state = 'queued' ORDER BY id "
        "FOR UPDATE",
        (message_id,),
    ).fetchall()
    for (batch_id,) in queued:
        finish_batch(conn, int(batch_id), "canceled", "canceled", None, now, None)
    # In flight: the SubmitReq is on the wire and cannot be taken back; flag the batch so
    # its holder cancels it at the MMSC as soon as its SubmitRsp is recorded.
    conn.execute(
        "UPDATE batches SET cancel_requested = 1, updated_at = %s "
        "WHERE message_id = %s AND state IN ('in_flight', 'submitted')",
        (now, message_id),
    )
    submitted = [
        (int(r[0]), str(r[1]), str(r[2]))
        for r in conn.execute(
            "SELECT id, route, mm7_message_id FROM batches WHERE message_id = %s "
            "AND state = 'submitted' AND mm7_message_id IS NOT NULL ORDER BY id",
            (message_id,),
        ).fetchall()
    ]
    in_flight = conn.execute(
        "SELECT COUNT(*) FROM batches WHERE message_id = %s AND state = 'in_flight'",
        (message_id,),
    ).fetchone()
    return CancelPlan(
        found=True, submitted=submitted, in_flight=int(in_flight[0]) if in_flight else 0
    )


def replace_plan(conn: Conn, message_id: str, hold_until: float) -> ReplacePlan:
    """Where a message's batches stand; queued ones are held unless one is in flight
    (same contract as ``SqliteStore.replace_plan``)."""
    counts = conn.execute(
        "SELECT state, COUNT(*) FROM batches WHERE message_id = %s GROUP BY state",
        (message_id,),
    ).fetchall()
    states = {str(s): int(n) for s, n in counts}
    submitted = [
        (int(r[0]), str(r[1]), str(r[2]))
        for r in conn.execute(
            "SELECT id, route, mm7_message_id FROM batches b WHERE message_id = %s "
            "AND state = 'submitted' AND mm7_message_id IS NOT NULL AND EXISTS ("
            "SELECT 1 FROM recipients r WHERE r.batch_id = b.id "
            "AND r.status IN ('submitted', 'rejected')) ORDER BY id",
            (message_id,),
        ).fetchall()
    ]
    routes = tuple(
        str(r[0])
        for r in conn.execute(
            "SELECT DISTINCT route FROM batches WHERE message_id = %s ORDER BY route",
            (message_id,),
        ).fetchall()
    )
    held: list[tuple[int, float]] = []
    if not states.get("in_flight"):
        held = [
            (int(r[0]), float(r[1]))
            for r in conn.execute(
                "SELECT id, next_attempt_at FROM batches "
                "WHERE message_id = %s AND state = 'queued' ORDER BY id FOR UPDATE",
                (message_id,),
            ).fetchall()
        ]
        executemany(
            conn,
            "UPDATE batches SET next_attempt_at = %s WHERE id = %s AND state = 'queued'",
            [(max(due, hold_until), batch_id) for batch_id, due in held],
        )
    return ReplacePlan(
        queued=states.get("queued", 0),
        in_flight=states.get("in_flight", 0),
        submitted=submitted,
        routes=routes,
        held=held,
    )
