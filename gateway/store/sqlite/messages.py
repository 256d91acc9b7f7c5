"""SQL of outbound messages, their recipients and submission batches (claims, state
changes, cancels), run on the store thread inside its group transaction.

Every batch state change also writes the ``message.status`` webhook event and applies
reports that overtook the SubmitRsp (``reports.batch_status_changed``), in the same
transaction.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Final

from gateway.errors import IdempotencyConflict, StoreError
from gateway.store.records import (
    FINAL_RECIPIENT_STATES,
    SMS_STATES,
    Batch,
    CancelPlan,
    MessageRecord,
    NewMessage,
    RecipientRecord,
    RecipientsRefused,
    plan_batches,
)
from gateway.store.sqlite import pools
from gateway.store.sqlite.events import message_status_event
from gateway.store.sqlite.locks import lock_message, lock_message_of_batch
from gateway.store.sqlite.parts import parts_from_json, parts_to_json
from gateway.store.sqlite.reports import batch_status_changed, refresh_message_status
from gateway.store.sqlite.sms import add_intents, cancel_queued, fallback_after
from gateway.store.sqlite.suppressions import suppressed_numbers


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
    refused = {i: (code, text) for i, code, text in new.refusals}
    for index, why in optout_refusals(conn, new).items():
        refused.setdefault(index, why)
    for index, why in pools.refusals(conn, new, new.created_at).items():
        refused.setdefault(index, why)
    if len(refused) == len(new.recipients):
        # Nothing to send: no message at all, and the client learns why (DESIGN §12).
        code, text = refused[min(refused)]
        raise RecipientsRefused(
            f"every recipient was refused ({text})",
            code=code,
            refusals=[(i, why[0]) for i, why in sorted(refused.items())],
        )
    conn.execute(
        "INSERT INTO messages (id, api_key, route, status, sender, subject, body_text, parts_json, "
        "priority, delivery_report, read_report, callback_url, client_ref, idempotency_key, "
        "request_hash, fallback, original_bytes, adapted_bytes, attempts, created_at, updated_at, "
        "send_at, expires_at, pool) VALUES "
        "(?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
        (
            new.id,
            new.api_key,
            new.route,
            new.sender,
            new.subject,
            new.text,
            parts_to_json(new.parts),
            new.priority,
            int(new.delivery_report),
            int(new.read_report),
            new.callback_url,
            new.client_ref,
            new.idempotency_key,
            new.request_hash,
            new.fallback,
            new.original_bytes,
            new.adapted_bytes,
            new.created_at,
            new.created_at,
            new.send_at,
            new.expires_at,
            new.pool,
        ),
    )
    if new.sms_only:
        # No MMS at all: every recipient's SMS intent commits with the message.
        conn.executemany(
            "INSERT INTO recipients (message_id, idx, address, status, fallback, updated_at) "
            "VALUES (?, ?, ?, 'sms_queued', 'sms', ?)",
            [(new.id, i, a, new.created_at) for i, a in enumerate(new.recipients)],
        )
        add_intents(conn, new.id, list(range(len(new.recipients))), "no_mms", new.send_at)
        refresh_message_status(conn, new.id, new.created_at)
        record = load_message(conn, new.id)
        if record is None:  # pragma: no cover - same transaction
            raise StoreError("new message vanished")
        return record, True
    recipient_rows: list[tuple[str, int, str, str, int | None, str | None, float]] = [
        (new.id, i, new.recipients[i], "rejected", None, f"{code}: {text}", new.created_at)
        for i, (code, text) in sorted(refused.items())
    ]
    for ordinal, (route, sender, due, members) in enumerate(
        plan_batches(new, set(refused)), start=1
    ):
        # The TransactionID is fixed for the batch's life (retries keep it, so MMSCs
        # that de-duplicate on it can); message id + ordinal is unique without a lookup.
        # RETURNING (not lastrowid): portable to PostgreSQL. ``sender`` stays NULL unless
        # a pool chose it per recipient.
        batch_id = conn.execute(
            "INSERT INTO batches (message_id, route, state, attempts, next_attempt_at, "
            "expires_at, transaction_id, created_at, updated_at, sender) "
            "VALUES (?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                new.id, route, due, new.expires_at, f"{new.id}-{ordinal}",
                new.created_at, new.created_at, sender if new.recipient_senders else None,
            ),
        ).fetchone()[0]  # fmt: skip
        recipient_rows.extend(
            (new.id, i, new.recipients[i], "queued", batch_id, None, new.created_at)
            for i in members
        )
    conn.executemany(
        "INSERT INTO recipients (message_id, idx, address, status, batch_id, error, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        recipient_rows,
    )
    pools.record_sends(conn, new, [i for i in range(len(new.recipients)) if i not in refused])
    # What _load_message would read back, built from what was just written (a new message:
    # every recipient queued, nothing attempted).
    record = MessageRecord(
        id=new.id,
        api_key=new.api_key,
        route=new.route,
        status="queued",
        sender=new.sender,
        subject=new.subject,
        text=new.text,
        parts=new.parts,
        priority=new.priority,
        delivery_report=new.delivery_report,
        read_report=new.read_report,
        callback_url=new.callback_url,
        client_ref=new.client_ref,
        idempotency_key=new.idempotency_key,
        request_hash=new.request_hash,
        fallback=new.fallback,
        original_bytes=new.original_bytes,
        adapted_bytes=new.adapted_bytes,
        attempts=0,
        last_error=None,
        created_at=float(new.created_at),
        updated_at=float(new.created_at),
        send_at=float(new.send_at),
        expires_at=float(new.expires_at),
        recipients=tuple(
            RecipientRecord(
                address=address,
                status="rejected" if i in refused else "queued",
                error=f"{refused[i][0]}: {refused[i][1]}" if i in refused else None,
                updated_at=float(new.created_at),
                sender=None if i in refused else new.sender_of(i),
            )
            for i, address in enumerate(new.recipients)
        ),
        pool=new.pool,
    )
    return record, True


def optout_refusals(conn: sqlite3.Connection, new: NewMessage) -> dict[int, tuple[str, str]]:
    """Recipients on the suppression list of their ``optout_senders`` entry (a STOP sent
    to that sender): checked here, so a STOP committed meanwhile is never missed."""
    if not new.optout_senders:
        return {}
    pairs = [
        (number, sender)
        for number, sender in zip(new.recipients, new.optout_senders, strict=True)
        if sender
    ]
    blocked = set(suppressed_numbers(conn, pairs))
    return {
        i: ("recipient_opted_out", "the recipient opted out of messages from this sender")
        for i, (number, sender) in enumerate(zip(new.recipients, new.optout_senders, strict=True))
        if sender and number in blocked
    }


_MESSAGE_COLUMNS: Final = (
    "id, api_key, route, status, sender, subject, body_text, parts_json, priority, "
    "delivery_report, read_report, callback_url, client_ref, idempotency_key, request_hash, "
    "fallback, original_bytes, adapted_bytes, attempts, last_error, created_at, updated_at, "
    "send_at, expires_at, pool"
)


def load_message(conn: sqlite3.Connection, message_id: str) -> MessageRecord | None:
    row = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?",  # noqa: S608 - constant columns
        (message_id,),
    ).fetchone()
    if row is None:
        return None
    recipients = tuple(
        RecipientRecord(
            address=r[0],
            status=r[1],
            mm7_message_id=r[2],
            error=r[3],
            updated_at=float(r[4]),
            sender=r[5] if r[5] is not None else (row[4] if r[6] is not None else None),
            fallback=r[7],
        )
        for r in conn.execute(
            "SELECT r.address, r.status, r.mm7_message_id, r.error, r.updated_at, b.sender, "
            "r.batch_id, r.fallback FROM recipients r LEFT JOIN batches b ON b.id = r.batch_id "
            "WHERE r.message_id = ? ORDER BY r.idx",
            (message_id,),
        )
    )
    return MessageRecord(
        id=row[0],
        api_key=row[1],
        route=row[2],
        status=row[3],
        sender=row[4],
        subject=row[5],
        text=row[6],
        parts=parts_from_json(row[7]),
        priority=row[8],
        delivery_report=bool(row[9]),
        read_report=bool(row[10]),
        callback_url=row[11],
        client_ref=row[12],
        idempotency_key=row[13],
        request_hash=row[14],
        fallback=row[15],
        original_bytes=row[16],
        adapted_bytes=row[17],
        attempts=int(row[18]),
        last_error=row[19],
        created_at=float(row[20]),
        updated_at=float(row[21]),
        send_at=float(row[22]),
        expires_at=float(row[23]),
        recipients=recipients,
        pool=row[24],
    )


def claim_due(
    conn: sqlite3.Connection, route: str, now: float, limit: int, max_in_flight: int | None = None
) -> list[Batch]:
    """Up to ``limit`` due batches of ``route`` to in_flight, never more than
    ``max_in_flight`` of the route in flight at once (counting those claimed before)."""
    if max_in_flight is not None:
        in_flight = conn.execute(
            "SELECT COUNT(*) FROM batches WHERE route = ? AND state = 'in_flight'", (route,)
        ).fetchone()[0]
        limit = min(limit, max_in_flight - int(in_flight))
        if limit <= 0:
            return []
    return claim_rows(conn, route, now, select_due(conn, route, now, limit))


def select_due(
    conn: sqlite3.Connection, route: str, now: float, limit: int
) -> list[tuple[Any, ...]]:
    """``(id, message_id, attempts, expires_at, transaction_id, sender)`` of due batches."""
    return conn.execute(
        "SELECT id, message_id, attempts, expires_at, transaction_id, sender FROM batches "
        "WHERE route = ? AND state = 'queued' AND next_attempt_at <= ? "
        # A batch whose cancel was requested is never sent again (the store's invariant:
        # every path that ends an attempt cancels such a batch instead of queueing it).
        "AND cancel_requested = 0 "
        "ORDER BY next_attempt_at, id LIMIT ?",
        (route, now, limit),
    ).fetchall()


def claim_rows(
    conn: sqlite3.Connection,
    route: str,
    now: float,
    rows: list[tuple[Any, ...]],
    *,
    owner: str | None = None,
    lease_until: float | None = None,
) -> list[Batch]:
    """Move the selected batches to in_flight (attempt counted, held by ``owner`` until
    ``lease_until`` on a shared store) and return them with their recipients."""
    if not rows:
        return []
    ids = [int(row[0]) for row in rows]
    marks = ", ".join("?" for _ in ids)
    # A few statements for the whole claim, not a few per batch (on PostgreSQL each one
    # is a round trip made under the route's claim lock).
    conn.execute(
        "UPDATE batches SET state = 'in_flight', attempts = attempts + 1, claimed_by = ?, "  # noqa: S608 - placeholders only
        f"lease_until = ?, updated_at = ? WHERE id IN ({marks})",
        (owner, lease_until, now, *ids),
    )
    addresses: dict[int, list[str]] = {}
    for batch_id, address in conn.execute(
        f"SELECT batch_id, address FROM recipients WHERE batch_id IN ({marks}) "  # noqa: S608 - placeholders only
        "ORDER BY batch_id, idx",
        ids,
    ):
        addresses.setdefault(int(batch_id), []).append(str(address))
    batches = [
        Batch(
            id=int(batch_id),
            message_id=message_id,
            route=route,
            attempts=int(attempts) + 1,
            recipients=tuple(addresses.get(int(batch_id), ())),
            expires_at=float(expires_at),
            # A fresh TransactionID per attempt would defeat duplicate detection at
            # MMSCs that use it; keep the batch's own for every retry.
            transaction_id=transaction_id,
            sender=sender,
        )
        for batch_id, message_id, attempts, expires_at, transaction_id, sender in rows
    ]
    message_ids = sorted({b.message_id for b in batches})
    conn.execute(
        "UPDATE messages SET attempts = attempts + (SELECT COUNT(*) FROM batches b "  # noqa: S608 - placeholders only
        f"WHERE b.message_id = messages.id AND b.id IN ({marks})), updated_at = ? "
        f"WHERE id IN ({', '.join('?' for _ in message_ids)})",
        (*ids, now, *message_ids),
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
    lock_message_of_batch(conn, batch_id)
    # RETURNING instead of a SELECT before each UPDATE: two statements fewer per outcome.
    # The MessageID returned is COALESCE(new, old), the one the batch now has.
    row = conn.execute(
        "UPDATE batches SET state = ?, mm7_message_id = COALESCE(?, mm7_message_id), "
        "last_error = COALESCE(?, last_error), claimed_by = NULL, lease_until = NULL, "
        "updated_at = ? WHERE id = ? RETURNING message_id, cancel_requested, mm7_message_id",
        (batch_state, mm7_message_id, error, now, batch_id),
    ).fetchone()
    if row is None:
        raise StoreError(f"no batch {batch_id}")
    changed = [
        int(r[0])
        for r in conn.execute(
            _FINISH_RECIPIENTS,
            (recipient_state, mm7_message_id, error, now, batch_id, *_FINAL_OR_SMS),
        )
    ]
    if error is not None:
        conn.execute("UPDATE messages SET last_error = ? WHERE id = ?", (error, row[0]))
    refresh_message_status(conn, row[0], now)
    # Issue 5: the message.status webhook event is written in this same transaction, so a
    # state change and its event commit together and in order (transactional outbox).
    batch_status_changed(conn, row[0], batch_id, recipient_state, now, row[2], changed=changed)
    # After the event of the MM7 outcome: recipients the route sends on by SMS (§13).
    fallback_after(conn, row[0], batch_id=batch_id, indexes=None, state=recipient_state, now=now)
    return bool(row[1])


_FINAL_OR_SMS: Final = tuple(sorted(FINAL_RECIPIENT_STATES | SMS_STATES))
# Only "?" placeholders are interpolated into this statement.
_FINISH_RECIPIENTS: Final = (
    "UPDATE recipients SET status = ?, mm7_message_id = COALESCE(?, mm7_message_id), "  # noqa: S608
    "error = COALESCE(?, error), updated_at = ? "
    f"WHERE batch_id = ? AND status NOT IN ({', '.join('?' for _ in _FINAL_OR_SMS)}) "
    "RETURNING idx"
)


def cancel_message(conn: sqlite3.Connection, message_id: str, now: float) -> CancelPlan:
    if conn.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone() is None:
        return CancelPlan(found=False)
    lock_message(conn, message_id)
    queued = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM batches WHERE message_id = ? AND state = 'queued'", (message_id,)
        )
    ]
    for batch_id in queued:
        finish_batch(conn, batch_id, "canceled", "canceled", None, now, None)
    cancel_queued(conn, message_id, now)
    # In flight: the SubmitReq is on the wire and cannot be taken back; flag the batch so
    # the worker cancels it at the MMSC as soon as its SubmitRsp is recorded.
    conn.execute(
        "UPDATE batches SET cancel_requested = 1, updated_at = ? WHERE message_id = ? "
        "AND (state = 'in_flight' OR (state = 'submitted' AND mm7_message_id IS NOT NULL))",
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
    # Accepted without a MessageID: no CancelReq can name them (not flagged above).
    unnamed = conn.execute(
        "SELECT COUNT(*) FROM batches WHERE message_id = ? AND state = 'submitted' "
        "AND mm7_message_id IS NULL",
        (message_id,),
    ).fetchone()[0]
    return CancelPlan(
        found=True, submitted=submitted, in_flight=int(in_flight), without_message_id=int(unnamed)
    )


def cancel_not_possible(conn: sqlite3.Connection, batch_id: int, now: float, why: str) -> None:
    """Stop asking to cancel a batch, and say why on its recipients (with a webhook)."""
    lock_message_of_batch(conn, batch_id)
    row = conn.execute(
        "UPDATE batches SET cancel_requested = 0, updated_at = ? WHERE id = ? RETURNING message_id",
        (now, batch_id),
    ).fetchone()
    if row is None:
        return
    message_id = str(row[0])
    changed = [
        int(r[0])
        for r in conn.execute(
            "UPDATE recipients SET error = ?, updated_at = ? WHERE batch_id = ? RETURNING idx",
            (why, now, batch_id),
        )
    ]
    conn.execute("UPDATE messages SET last_error = ?, updated_at = ? WHERE id = ?",
                 (why, now, message_id))  # fmt: skip
    message_status_event(conn, message_id, sorted(changed), now)


#: Why a batch flagged for cancel while in flight ended ``canceled`` without a SubmitRsp
#: success: the MMSC never confirmed it, so there is no MessageID to send a CancelReq for.
CANCELED_IN_FLIGHT: Final = "canceled while in flight; the MMSC did not accept the attempt"


def cancel_if_requested(conn: sqlite3.Connection, batch_id: int, now: float, why: str) -> bool:
    """End a batch ``canceled`` (recipients, status, webhook) if its cancel was requested.

    Called wherever an attempt ends without the MMSC's acceptance (retry, crash recovery,
    shutdown): a DELETE answered 200 must not be followed by another SubmitReq.
    """
    lock_message_of_batch(conn, batch_id)
    row = conn.execute(
        "SELECT cancel_requested FROM batches WHERE id = ? AND state IN ('in_flight', 'queued')",
        (batch_id,),
    ).fetchone()
    if row is None or not row[0]:
        return False
    finish_batch(conn, batch_id, "canceled", "canceled", f"{CANCELED_IN_FLIGHT} ({why})", now, None)
    return True


def retry_batch(
    conn: sqlite3.Connection, batch_id: int, next_at: float, error: str, refund: int, now: float
) -> bool:
    """Queue an in-flight batch again; True when a cancel request ended it instead."""
    if cancel_if_requested(conn, batch_id, now, error):
        return True
    conn.execute(
        "UPDATE batches SET state = 'queued', next_attempt_at = ?, last_error = ?, "
        "attempts = attempts - ?, claimed_by = NULL, lease_until = NULL, updated_at = ? "
        "WHERE id = ? AND state = 'in_flight'",
        (next_at, error, refund, now, batch_id),
    )
    conn.execute(
        "UPDATE messages SET last_error = ?, updated_at = ? WHERE id = "
        "(SELECT message_id FROM batches WHERE id = ?)",
        (error, now, batch_id),
    )
    return False


def requeue_in_flight(conn: sqlite3.Connection, now: float) -> int:
    """Crash recovery: in-flight batches are queued again, due now, unless their cancel
    was requested (those end canceled; so do queued ones an older version left flagged)."""
    flagged = conn.execute(
        "SELECT id FROM batches WHERE state IN ('in_flight', 'queued') AND cancel_requested = 1"
    ).fetchall()
    for (batch_id,) in flagged:
        cancel_if_requested(conn, int(batch_id), now, "the gateway restarted during the attempt")
    cur = conn.execute(
        "UPDATE batches SET state = 'queued', next_attempt_at = ?, updated_at = ? "
        "WHERE state = 'in_flight'",
        (now, now),
    )
    return cur.rowcount


def release(conn: sqlite3.Connection, batch_ids: list[int], now: float) -> None:
    """Shutdown: claimed batches go back to the queue, flagged ones end canceled."""
    for batch_id in batch_ids:
        if not cancel_if_requested(conn, batch_id, now, "the gateway stopped during the attempt"):
            conn.execute(
                "UPDATE batches SET state = 'queued', claimed_by = NULL, lease_until = NULL, "
                "updated_at = ? WHERE id = ? AND state = 'in_flight'",
                (now, batch_id),
            )
