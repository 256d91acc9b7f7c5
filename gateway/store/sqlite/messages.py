"""SQL of outbound messages, their recipients and submission batches (claims, state
changes, cancels), run on the store thread inside its group transaction.

Every batch state change also writes the ``message.status`` webhook event and applies
reports that overtook the SubmitRsp (``reports.batch_status_changed``), in the same
transaction.
"""

from __future__ import annotations

import sqlite3

from gateway.errors import IdempotencyConflict, StoreError
from gateway.store.records import (
    FINAL_RECIPIENT_STATES,
    Batch,
    CancelPlan,
    MessageRecord,
    NewMessage,
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
from gateway.store.sqlite.reports import batch_status_changed, refresh_message_status


def create_message(conn: sqlite3.Connection, new: NewMessage) -> tuple[MessageRecord, bool]:
    if new.idempotency_key is not None:
        row = conn.execute(
            "SELECT id, request_hash FROM messages WHERE api_key = ? AND idempotency_key = ?",
            (new.api_key, new.idempotency_key),
        ).fetchone()
        if row is not None:
            if row[1] != new.request_hash:
                raise IdempotencyConflict(
                    "Idempotency-Key was already used with a different request"
                )
            existing = load_message(conn, row[0])
            if existing is None:  # pragma: no cover - same transaction
                raise StoreError("idempotent message vanished")
            return existing, False
    conn.execute(
        f"INSERT INTO messages ({MESSAGE_INSERT_COLUMNS}, status, attempts) VALUES "  # noqa: S608 - constant columns
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0)",
        message_values(new),
    )
    recipient_rows: list[tuple[str, int, str, int | None, float]] = []
    for route, transaction_id, members in plan_batches(new):
        # RETURNING (not lastrowid): portable to PostgreSQL.
        batch_id = conn.execute(
            "INSERT INTO batches (message_id, route, state, attempts, next_attempt_at, "
            "expires_at, transaction_id, created_at, updated_at) "
            "VALUES (?, ?, 'queued', 0, ?, ?, ?, ?, ?) RETURNING id",
            (
                new.id, route, new.send_at, new.expires_at, transaction_id,
                new.created_at, new.created_at,
            ),
        ).fetchone()[0]  # fmt: skip
        recipient_rows.extend(
            (new.id, idx, address, batch_id, new.created_at) for idx, address in members
        )
    conn.executemany(
        "INSERT INTO recipients (message_id, idx, address, status, batch_id, updated_at) "
        "VALUES (?, ?, ?, 'queued', ?, ?)",
        recipient_rows,
    )
    return new_message_record(new), True


def load_message(conn: sqlite3.Connection, message_id: str) -> MessageRecord | None:
    row = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?",  # noqa: S608 - constant columns
        (message_id,),
    ).fetchone()
    if row is None:
        return None
    recipients = conn.execute(
        f"SELECT {RECIPIENT_COLUMNS} FROM recipients WHERE message_id = ? ORDER BY idx",  # noqa: S608 - constant columns
        (message_id,),
    ).fetchall()
    return message_from_row(row, recipients)


def claim_due(conn: sqlite3.Connection, route: str, now: float, limit: int) -> list[Batch]:
    rows = conn.execute(
        "SELECT id, message_id, attempts, expires_at, transaction_id FROM batches "
        "WHERE route = ? AND state = 'queued' AND next_attempt_at <= ? "
        "ORDER BY next_attempt_at, id LIMIT ?",
        (route, now, limit),
    ).fetchall()
    if not rows:
        return []
    conn.executemany(
        "UPDATE batches SET state = 'in_flight', attempts = attempts + 1, updated_at = ? "
        "WHERE id = ?",
        [(now, row[0]) for row in rows],
    )
    batches = []
    for batch_id, message_id, attempts, expires_at, transaction_id in rows:
        recipients = tuple(
            r[0]
            for r in conn.execute(
                "SELECT address FROM recipients WHERE batch_id = ? ORDER BY idx", (batch_id,)
            )
        )
        batches.append(
            Batch(
                id=int(batch_id),
                message_id=message_id,
                route=route,
                attempts=int(attempts) + 1,
                recipients=recipients,
                expires_at=float(expires_at),
                # A fresh TransactionID per attempt would defeat duplicate detection at
                # MMSCs that use it; keep the batch's own for every retry.
                transaction_id=transaction_id,
            )
        )
    conn.executemany(
        "UPDATE messages SET attempts = attempts + 1, updated_at = ? WHERE id = ?",
        [(now, b.message_id) for b in batches],
    )
    return batches


def finish_batch(
    conn: sqlite3.Connection,
    batch_id: int,
    batch_state: str,
    recipient_state: str,
    error: str | None,
    now: float,
    mm7_message_id: str | None,
) -> bool:
    """Move a batch and its unfinished recipients to a state; True if a cancel is pending."""
    row = conn.execute(
        "SELECT message_id, cancel_requested, mm7_message_id FROM batches WHERE id = ?",
        (batch_id,),
    ).fetchone()
    if row is None:
        raise StoreError(f"no batch {batch_id}")
    conn.execute(
        "UPDATE batches SET state = ?, mm7_message_id = COALESCE(?, mm7_message_id), "
        "last_error = COALESCE(?, last_error), updated_at = ? WHERE id = ?",
        (batch_state, mm7_message_id, error, now, batch_id),
    )
    final = tuple(FINAL_RECIPIENT_STATES)
    placeholders = ", ".join("?" for _ in final)
    # Only "?" placeholders are interpolated into this statement.
    statement = (
        "UPDATE recipients SET status = ?, mm7_message_id = COALESCE(?, mm7_message_id), "  # noqa: S608
        "error = COALESCE(?, error), updated_at = ? "
        f"WHERE batch_id = ? AND status NOT IN ({placeholders})"
    )
    conn.execute(
        statement,
        (recipient_state, mm7_message_id, error, now, batch_id, *final),
    )
    if error is not None:
        conn.execute("UPDATE messages SET last_error = ? WHERE id = ?", (error, row[0]))
    refresh_message_status(conn, row[0], now)
    # Issue 5: the message.status webhook event is written in this same transaction, so a
    # state change and its event commit together and in order (transactional outbox).
    batch_status_changed(conn, row[0], batch_id, recipient_state, now, mm7_message_id or row[2])
    return bool(row[1])


def cancel_message(conn: sqlite3.Connection, message_id: str, now: float) -> CancelPlan:
    if conn.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone() is None:
        return CancelPlan(found=False)
    queued = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM batches WHERE message_id = ? AND state = 'queued'", (message_id,)
        )
    ]
    for batch_id in queued:
        finish_batch(conn, batch_id, "canceled", "canceled", None, now, None)
    # In flight: the SubmitReq is on the wire and cannot be taken back; flag the batch so
    # the worker cancels it at the MMSC as soon as its SubmitRsp is recorded.
    conn.execute(
        "UPDATE batches SET cancel_requested = 1, updated_at = ? "
        "WHERE message_id = ? AND state IN ('in_flight', 'submitted')",
        (now, message_id),
    )
    submitted = [
        (int(r[0]), str(r[1]), str(r[2]))
        for r in conn.execute(
            "SELECT id, route, mm7_message_id FROM batches WHERE message_id = ? "
            "AND state = 'submitted' AND mm7_message_id IS NOT NULL",
            (message_id,),
        )
    ]
    in_flight = conn.execute(
        "SELECT COUNT(*) FROM batches WHERE message_id = ? AND state = 'in_flight'", (message_id,)
    ).fetchone()[0]
    return CancelPlan(found=True, submitted=submitted, in_flight=int(in_flight))
