"""SQL of a bulk send's intake: the campaign row, chunked recipient commits, opening,
and removing a campaign that was never answered.

A campaign's recipients arrive in chunks, each one write operation (one SAVEPOINT of a
group commit) of a few multi-row ``INSERT`` statements: one message, one batch
(SubmitReq) and its recipients per group of ``max_recipients_per_submit``. Those batches
are ``held`` (no worker claims them) until ``open_campaign`` queues them all at once, so
a request that fails half-way, or a crash before the answer, sends nothing;
``discard_campaign`` then removes what was written.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any, Final

from gateway.errors import StoreError
from gateway.store.campaign_records import (
    CampaignRecord,
    ChunkResult,
    InvalidLine,
    NewCampaign,
)
from gateway.store.records import NewMessage, plan_batches
from gateway.store.sqlite import pools
from gateway.store.sqlite.campaigns import campaign_event, load_campaign
from gateway.store.sqlite.parts import parts_to_json


def create_campaign(
    conn: sqlite3.Connection, new: NewCampaign, created_by: str | None = None
) -> tuple[str, bool]:
    """Insert a ``preparing`` campaign (``created_by``: the instance committing it, on a
    shared store); with an Idempotency-Key already used by this API key, the existing
    campaign's id instead (``created`` False)."""
    if new.idempotency_key is not None:
        row = conn.execute(
            "SELECT id FROM campaigns WHERE api_key = ? AND idempotency_key = ?",
            (new.api_key, new.idempotency_key),
        ).fetchone()
        if row is not None:
            return str(row[0]), False
    conn.execute(
        "INSERT INTO campaigns (id, api_key, status, events, callback_url, client_ref, "
        "idempotency_key, created_by, created_at, updated_at) "
        "VALUES (?, ?, 'preparing', ?, ?, ?, ?, ?, ?, ?)",
        (
            new.id, new.api_key, new.events, new.callback_url, new.client_ref,
            new.idempotency_key, created_by, new.created_at, new.created_at,
        ),
    )  # fmt: skip
    return new.id, True


#: A campaign's messages: what differs per message in rows of ``VALUES``, the content
#: (the same for the whole chunk) given once.
_INSERT_MESSAGES: Final = (
    "INSERT INTO messages (id, route, status, sender, send_at, campaign_seq, api_key, "
    "subject, body_text, parts_json, priority, delivery_report, read_report, callback_url, "
    "client_ref, fallback, original_bytes, adapted_bytes, attempts, created_at, updated_at, "
    "expires_at, pool, campaign_id) SELECT v.column1, v.column2, v.column3, v.column4, "
    "v.column5, v.column6, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ? FROM (VALUES"
)
#: Host parameters per statement of ``insert_rows`` (SQLite's default limit is 32,766).
_MAX_PARAMS: Final = 30_000
#: Rows per statement: past a few hundred a statement is no cheaper per row, and SQLite
#: keeps each compiled statement in its cache (4,096 rows of 5 columns: about 3 MiB).
_MAX_ROWS: Final = 256


def insert_rows(
    conn: sqlite3.Connection,
    head: str,
    group: str,
    rows: list[tuple[Any, ...]],
    *,
    tail: str = "",
    fixed: tuple[Any, ...] = (),
) -> list[tuple[Any, ...]]:
    """``head`` (with the ``fixed`` parameters), then one ``group`` of placeholders per
    row, then ``tail``: many rows per statement, and what a ``RETURNING`` tail gives back
    for them all. PostgreSQL, which binds on the client (``postgresql/connection.py``),
    then parses one statement per group of rows instead of one per row.

    Groups hold a power of two of rows, so a handful of statement texts recur (the
    drivers' statement caches stay small and warm).
    """
    if not rows:
        return []
    fit = min(_MAX_ROWS, max(1, (_MAX_PARAMS - len(fixed)) // len(rows[0])))
    most = 1 << (fit.bit_length() - 1)
    out: list[tuple[Any, ...]] = []
    start = 0
    while start < len(rows):
        size = min(most, 1 << ((len(rows) - start).bit_length() - 1))
        part = rows[start : start + size]
        cur = conn.execute(
            f"{head} {', '.join([group] * size)} {tail}".rstrip(),
            [*fixed, *(v for row in part for v in row)],
        )
        if "RETURNING" in tail:
            out.extend(cur.fetchall())
        start += size
    return out


def add_campaign_chunk(
    conn: sqlite3.Connection, campaign_id: str, chunk: NewMessage
) -> ChunkResult:
    """Commit one chunk of a campaign's recipients (``chunk``: the campaign's content with
    these recipients, routes, and a pool's senders and due times).

    Consent, opt-out and caps are checked here, in the transaction, like
    ``create_message``; refused recipients are stored ``rejected`` in one message of
    their own instead of refusing the chunk.
    """
    refused = {i: (code, text) for i, code, text in chunk.refusals}
    for index, why in pools.refusals(conn, chunk, chunk.created_at).items():
        refused.setdefault(index, why)
    seq = int(
        conn.execute(
            "SELECT COALESCE(MAX(campaign_seq), 0) FROM messages WHERE campaign_id = ?",
            (campaign_id,),
        ).fetchone()[0]
    )
    now = chunk.created_at

    messages: list[tuple[Any, ...]] = []
    batches: list[tuple[Any, ...]] = []
    members_of: dict[str, list[int]] = {}
    submits: dict[str, int] = {}
    # Ids in ascending order within a chunk (a random prefix, then the sequence): their
    # index entries go to one place instead of all over the primary key's B-tree.
    prefix = "msg_" + uuid.uuid4().hex[:20]
    for route, sender, due, members in plan_batches(chunk, set(refused)):
        seq += 1
        message_id = f"{prefix}{seq:012x}"
        messages.append((message_id, route, "queued", sender, due, seq))
        batches.append(
            (message_id, route, due, chunk.expires_at, f"{message_id}-1", now, now,
             sender if chunk.recipient_senders else None)
        )  # fmt: skip
        members_of[message_id] = members
        submits[route] = submits.get(route, 0) + 1
    rejected: list[tuple[Any, ...]] = []
    if refused:
        seq += 1
        message_id = f"{prefix}{seq:012x}"
        messages.append((message_id, chunk.route, "rejected", chunk.sender, now, seq))
        rejected = [
            (message_id, j, chunk.recipients[i], f"{code}: {text}", now)
            for j, (i, (code, text)) in enumerate(sorted(refused.items()))
        ]
    content = (
        chunk.api_key, chunk.subject, chunk.text, parts_to_json(chunk.parts), chunk.priority,
        int(chunk.delivery_report), int(chunk.read_report), chunk.callback_url,
        chunk.client_ref, chunk.fallback, chunk.original_bytes, chunk.adapted_bytes, now, now,
        chunk.expires_at, chunk.pool, campaign_id,
    )  # fmt: skip
    insert_rows(conn, _INSERT_MESSAGES, "(?, ?, ?, ?, ?, ?)", messages, tail=") AS v",
                fixed=content)  # fmt: skip
    # ``held``: no worker claims these until open_campaign (the request may still fail).
    batch_ids = insert_rows(
        conn,
        "INSERT INTO batches (message_id, route, state, attempts, next_attempt_at, expires_at, "
        "transaction_id, created_at, updated_at, sender) VALUES",
        "(?, ?, 'held', 0, ?, ?, ?, ?, ?, ?)",
        batches,
        tail="RETURNING message_id, id",
    )
    insert_rows(
        conn,
        "INSERT INTO recipients (message_id, idx, address, status, batch_id, updated_at) VALUES",
        "(?, ?, ?, 'queued', ?, ?)",
        [
            (message_id, j, chunk.recipients[i], batch_id, now)
            for message_id, batch_id in sorted(batch_ids)
            for j, i in enumerate(members_of[message_id])
        ],
    )
    insert_rows(
        conn,
        "INSERT INTO recipients (message_id, idx, address, status, error, updated_at) VALUES",
        "(?, ?, ?, 'rejected', ?, ?)",
        rejected,
    )
    pools.record_sends(conn, chunk, [i for i in range(len(chunk.recipients)) if i not in refused])
    if (
        conn.execute(
            "UPDATE campaigns SET recipients = recipients + ?, updated_at = ? "
            "WHERE id = ? AND status = 'preparing' RETURNING id",
            (len(chunk.recipients), now, campaign_id),
        ).fetchone()
        is None
    ):
        # Discarded meanwhile (taken for a dead instance's): these rows must not stay.
        raise StoreError(f"batch {campaign_id} is no longer being prepared")
    return ChunkResult(
        accepted=len(chunk.recipients) - len(refused),
        refused=[(i, code, text) for i, (code, text) in sorted(refused.items())],
        submits=submits,
    )


def open_campaign(
    conn: sqlite3.Connection, campaign_id: str, invalid: list[InvalidLine], invalid_count: int,
    now: float,
) -> CampaignRecord:  # fmt: skip
    """Every recipient is committed: queue the held SubmitReqs and say so (``batch.status``).

    The campaign row changes first (its lock orders this against a concurrent discard).
    """
    opened = conn.execute(
        "UPDATE campaigns SET status = 'queued', invalid_count = ?, invalid_json = ?, "
        "updated_at = ? WHERE id = ? AND status = 'preparing' RETURNING id",
        (
            invalid_count,
            json.dumps([[i.line, i.value, i.error] for i in invalid], ensure_ascii=False),
            now,
            campaign_id,
        ),
    ).fetchone()
    if opened is None:
        raise StoreError(f"batch {campaign_id} is no longer being prepared")
    conn.execute(
        "UPDATE batches SET state = 'queued', updated_at = ? WHERE state = 'held' AND "
        "message_id IN (SELECT id FROM messages WHERE campaign_id = ?)",
        (now, campaign_id),
    )
    campaign_event(conn, campaign_id, "queued", now)
    record = load_campaign(conn, campaign_id)
    if record is None:  # pragma: no cover - same transaction
        raise LookupError(campaign_id)
    return record


def discard_campaign(conn: sqlite3.Connection, campaign_id: str) -> bool:
    """Remove a campaign that was never opened (its request failed, or the gateway died);
    False when it was opened meanwhile (the campaign row's lock orders the two)."""
    gone = conn.execute(
        "DELETE FROM campaigns WHERE id = ? AND status = 'preparing' RETURNING id", (campaign_id,)
    ).fetchone()
    if gone is None:
        return False
    pooled = conn.execute(
        "SELECT pool, created_at FROM messages WHERE campaign_id = ? AND pool IS NOT NULL LIMIT 1",
        (campaign_id,),
    ).fetchone()
    if pooled is not None:
        # The chunks counted their recipients against the pool's daily cap (``record_sends``
        # at the campaign's time); none of them was sent.
        conn.execute(
            "DELETE FROM pool_sends WHERE pool = ? AND at = ? AND number IN (SELECT r.address "
            "FROM messages m JOIN recipients r ON r.message_id = m.id WHERE m.campaign_id = ? "
            "AND r.status = 'queued')",
            (pooled[0], pooled[1], campaign_id),
        )
    owned = "(SELECT id FROM messages WHERE campaign_id = ?)"
    conn.execute(f"DELETE FROM recipients WHERE message_id IN {owned}", (campaign_id,))  # noqa: S608
    conn.execute(f"DELETE FROM batches WHERE message_id IN {owned}", (campaign_id,))  # noqa: S608
    conn.execute("DELETE FROM messages WHERE campaign_id = ?", (campaign_id,))
    return True


#: A campaign still ``preparing`` this long after it was created is abandoned, whoever
#: created it (100,000 recipients are committed in well under a minute).
PREPARING_GIVE_UP_SECONDS: Final = 3600.0


def discard_preparing(
    conn: sqlite3.Connection,
    created_before: float,
    *,
    owner: str | None = None,
    at_start: bool = True,
    live_since: float | None = None,
) -> int:
    """Remove campaigns left ``preparing`` (never answered) by a run that is gone.

    Without ``live_since`` (one process owns the store; called at its start) every one
    created before ``created_before``. On a shared store only those that cannot be a
    request still being committed: created by an instance other than ``owner`` with no
    heartbeat since ``live_since``, by ``owner`` itself when ``at_start`` (its previous
    run), or more than ``PREPARING_GIVE_UP_SECONDS`` before ``created_before``.
    """
    if live_since is None:
        rows = conn.execute(
            "SELECT id FROM campaigns WHERE status = 'preparing' AND created_at < ?",
            (created_before,),
        )
    else:
        rows = conn.execute(
            "SELECT c.id FROM campaigns c WHERE c.status = 'preparing' AND c.created_at < ? "
            "AND (c.created_at < ? OR (c.created_by = ? AND ? = 1) OR (c.created_by <> ? "
            "AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = c.created_by "
            "AND i.last_seen >= ?)))",
            (
                created_before, created_before - PREPARING_GIVE_UP_SECONDS, owner,
                int(at_start), owner, live_since,
            ),
        )  # fmt: skip
    stale = [str(r[0]) for r in rows.fetchall()]
    return sum(discard_campaign(conn, campaign_id) for campaign_id in stale)
