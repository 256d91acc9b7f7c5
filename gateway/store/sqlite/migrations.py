"""Numbered schema migrations, applied in order at startup (versioned from day one).

Each migration is a list of portable SQL statements; ``schema_migrations`` records which
ran. Never edit a released migration: add a new one.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Final

MIGRATIONS: Final[tuple[tuple[int, str, tuple[str, ...]], ...]] = (
    (
        1,
        "messages, recipients, submission batches",
        (
            """CREATE TABLE messages (
                id TEXT PRIMARY KEY,
                api_key TEXT NOT NULL,
                route TEXT NOT NULL,
                status TEXT NOT NULL,
                sender TEXT,
                subject TEXT,
                body_text TEXT,
                parts_json TEXT NOT NULL,
                priority TEXT,
                delivery_report INTEGER NOT NULL,
                read_report INTEGER NOT NULL,
                callback_url TEXT,
                client_ref TEXT,
                idempotency_key TEXT,
                request_hash TEXT,
                fallback TEXT,
                original_bytes INTEGER,
                adapted_bytes INTEGER,
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                send_at REAL NOT NULL,
                expires_at REAL NOT NULL
            )""",
            "CREATE UNIQUE INDEX messages_idempotency ON messages (api_key, idempotency_key)",
            """CREATE TABLE recipients (
                message_id TEXT NOT NULL,
                idx INTEGER NOT NULL,
                address TEXT NOT NULL,
                status TEXT NOT NULL,
                batch_id INTEGER,
                mm7_message_id TEXT,
                error TEXT,
                updated_at REAL NOT NULL,
                PRIMARY KEY (message_id, idx)
            )""",
            "CREATE INDEX recipients_mm7_id ON recipients (mm7_message_id)",
            "CREATE INDEX recipients_batch ON recipients (batch_id)",
            """CREATE TABLE batches (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                message_id TEXT NOT NULL,
                route TEXT NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                transaction_id TEXT NOT NULL,
                mm7_message_id TEXT,
                last_error TEXT,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL
            )""",
            "CREATE INDEX batches_due ON batches (route, state, next_attempt_at)",
            "CREATE INDEX batches_message ON batches (message_id)",
        ),
    ),
    (
        2,
        "callbacks: delivery reports, inbound messages, webhook outbox, suppressions",
        (
            # Every DeliveryReportReq/ReadReplyReq we answered, matched or not (issue 5).
            """CREATE TABLE delivery_reports (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                mmsc TEXT NOT NULL,
                dedupe_key TEXT NOT NULL UNIQUE,
                mm7_message_id TEXT,
                recipient TEXT,
                sender TEXT,
                mm_status TEXT,
                mm_status_extension TEXT,
                status_text TEXT,
                mapped_state TEXT,
                report_at REAL NOT NULL,
                received_at REAL NOT NULL,
                transaction_id TEXT,
                message_id TEXT,
                recipient_idx INTEGER,
                outcome TEXT NOT NULL
            )""",
            "CREATE INDEX delivery_reports_mm7_id ON delivery_reports (mm7_message_id, outcome)",
            (
                "CREATE INDEX delivery_reports_recipient ON delivery_reports "
                "(message_id, recipient_idx, outcome)"
            ),
            """CREATE TABLE inbound_messages (
                id TEXT PRIMARY KEY,
                mmsc TEXT NOT NULL,
                dedupe_key TEXT NOT NULL UNIQUE,
                api_key TEXT,
                sender TEXT,
                recipient TEXT,
                recipients_json TEXT NOT NULL,
                subject TEXT,
                body_text TEXT,
                linked_id TEXT,
                transaction_id TEXT,
                optout TEXT,
                sent_at REAL,
                received_at REAL NOT NULL
            )""",
            "CREATE INDEX inbound_messages_received ON inbound_messages (received_at, id)",
            """CREATE TABLE inbound_parts (
                inbound_id TEXT NOT NULL,
                idx INTEGER NOT NULL,
                content_type TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                size INTEGER NOT NULL,
                content_id TEXT,
                content_location TEXT,
                charset TEXT,
                body_text TEXT,
                PRIMARY KEY (inbound_id, idx)
            )""",
            "CREATE INDEX inbound_parts_sha256 ON inbound_parts (sha256)",
            # Webhook events, written in the transaction that caused them (transactional
            # outbox); ``stream`` orders the events of one message.
            """CREATE TABLE outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                event_id TEXT NOT NULL UNIQUE,
                type TEXT NOT NULL,
                stream TEXT NOT NULL,
                api_key TEXT,
                url TEXT NOT NULL,
                body TEXT NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at REAL NOT NULL,
                last_error TEXT,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL
            )""",
            "CREATE INDEX outbox_due ON outbox (state, next_attempt_at)",
            "CREATE INDEX outbox_stream ON outbox (stream, state, id)",
            # Default webhook URL per API key, copied from the config at every start so the
            # store thread can address events without reaching into the config.
            """CREATE TABLE webhook_targets (
                api_key TEXT PRIMARY KEY,
                url TEXT NOT NULL
            )""",
            """CREATE TABLE suppressions (
                number TEXT NOT NULL,
                short_code TEXT NOT NULL,
                keyword TEXT,
                created_at REAL NOT NULL,
                PRIMARY KEY (number, short_code)
            )""",
        ),
    ),
    (
        3,
        "cancel requested while a submission is in flight",
        (
            # A DELETE that finds a batch in flight cannot dequeue it; the worker that
            # records the SubmitRsp sends the CancelReq instead (durable across a crash).
            "ALTER TABLE batches ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    (
        5,
        "claims with leases (several instances on one PostgreSQL store)",
        (
            # Who holds an in-flight batch or a webhook event being sent, and until when: a
            # claim whose lease ran out belongs to a dead instance and may be taken again.
            # SQLite (one process per file) records them too, so both schemas stay alike.
            "ALTER TABLE batches ADD COLUMN claimed_by TEXT",
            "ALTER TABLE batches ADD COLUMN lease_until REAL",
            "ALTER TABLE outbox ADD COLUMN claimed_by TEXT",
            "ALTER TABLE outbox ADD COLUMN lease_until REAL",
            "CREATE INDEX batches_lease ON batches (route, state, lease_until)",
        ),
    ),
    (
        6,
        "SMS fallback: intents, route policies, short links",
        (
            # "sms" once a recipient went over to the SMS fallback (it then follows the
            # Kannel reports, not MM7 ones).
            "ALTER TABLE recipients ADD COLUMN fallback TEXT",
            # Fallback causes per route, copied from the config at each start so the
            # transaction that makes a recipient fail can record its SMS intent at once.
            """CREATE TABLE sms_routes (
                route TEXT PRIMARY KEY,
                causes TEXT NOT NULL
            )""",
            # One SMS per recipient and cause, recorded before any sendsms call.
            """CREATE TABLE sms_intents (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                message_id TEXT NOT NULL,
                idx INTEGER NOT NULL,
                cause TEXT NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at REAL NOT NULL,
                segments INTEGER,
                coding TEXT,
                dlr_type INTEGER,
                last_error TEXT,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                UNIQUE (message_id, idx, cause)
            )""",
            "CREATE INDEX sms_intents_due ON sms_intents (state, next_attempt_at)",
            """CREATE TABLE short_links (
                code TEXT PRIMARY KEY,
                message_id TEXT NOT NULL UNIQUE,
                expires_at REAL NOT NULL,
                created_at REAL NOT NULL
            )""",
        ),
    ),
    (
        7,
        "per-attempt SubmitReq history (operator console timeline)",
        (
            # One row per SubmitReq exchange, written in the transaction that records its
            # outcome on the batch; batches only keep their last error.
            """CREATE TABLE submit_attempts (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                batch_id INTEGER NOT NULL,
                message_id TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                outcome TEXT NOT NULL,
                status_code INTEGER,
                status_text TEXT,
                error TEXT,
                at REAL NOT NULL
            )""",
            "CREATE INDEX submit_attempts_message ON submit_attempts (message_id, id)",
        ),
    ),
    (
        8,
        "indexes for retention (purge by age in small chunks)",
        (
            "CREATE INDEX messages_updated ON messages (updated_at)",
            "CREATE INDEX messages_unfinished ON messages (status, created_at)",
            "CREATE INDEX delivery_reports_received ON delivery_reports (received_at)",
            "CREATE INDEX outbox_finished ON outbox (state, updated_at)",
        ),
    ),
    (
        9,
        "sender pools: sender per batch, consent records and history, stickiness, daily caps",
        (
            # NULL: the message's sender (every batch before pools).
            "ALTER TABLE batches ADD COLUMN sender TEXT",
            "ALTER TABLE messages ADD COLUMN pool TEXT",
            """CREATE TABLE consent (
                pool TEXT NOT NULL,
                number TEXT NOT NULL,
                status TEXT NOT NULL,
                source TEXT NOT NULL,
                at REAL NOT NULL,
                updated_at REAL NOT NULL,
                PRIMARY KEY (pool, number)
            )""",
            # Evidence: rows are only ever inserted (no UPDATE, DELETE or retention purge).
            """CREATE TABLE consent_history (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                pool TEXT NOT NULL,
                number TEXT NOT NULL,
                status TEXT NOT NULL,
                source TEXT NOT NULL,
                reason TEXT,
                at REAL NOT NULL,
                recorded_at REAL NOT NULL
            )""",
            "CREATE INDEX consent_history_number ON consent_history (pool, number, id)",
            """CREATE TABLE pool_recipients (
                pool TEXT NOT NULL,
                number TEXT NOT NULL,
                sender TEXT NOT NULL,
                last_at REAL NOT NULL,
                PRIMARY KEY (pool, number)
            )""",
            """CREATE TABLE pool_sends (
                pool TEXT NOT NULL,
                number TEXT NOT NULL,
                at REAL NOT NULL
            )""",
            "CREATE INDEX pool_sends_recent ON pool_sends (pool, number, at)",
        ),
    ),
    (
        10,
        "cluster: instance heartbeats, shared token buckets, leases on SMS intents",
        (
            """CREATE TABLE instances (
                instance_id TEXT PRIMARY KEY,
                started_at REAL NOT NULL,
                last_seen REAL NOT NULL
            )""",
            # One token bucket per route, shared by every instance (DESIGN.md section 11).
            """CREATE TABLE send_tokens (
                route TEXT PRIMARY KEY,
                tokens REAL NOT NULL,
                updated_at REAL NOT NULL
            )""",
            "ALTER TABLE sms_intents ADD COLUMN claimed_by TEXT",
            "ALTER TABLE sms_intents ADD COLUMN lease_until REAL",
        ),
    ),
    (
        11,
        "bulk sends: campaigns (POST /v1/batches) and their messages",
        (
            # One row per POST /v1/batches. ``status``: preparing (recipients being
            # committed; its SubmitReqs are held), queued, sending, sent, completed,
            # canceled. ``invalid_json``: the refused input lines, as answered.
            """CREATE TABLE campaigns (
                id TEXT PRIMARY KEY,
                api_key TEXT NOT NULL,
                status TEXT NOT NULL,
                events TEXT NOT NULL,
                callback_url TEXT,
                client_ref TEXT,
                idempotency_key TEXT,
                recipients INTEGER NOT NULL DEFAULT 0,
                invalid_count INTEGER NOT NULL DEFAULT 0,
                invalid_json TEXT NOT NULL DEFAULT '[]',
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL
            )""",
            "CREATE INDEX campaigns_status ON campaigns (status)",
            "CREATE UNIQUE INDEX campaigns_idempotency ON campaigns (api_key, idempotency_key)",
            # A campaign is stored as ordinary messages of one SubmitReq each (so dispatch,
            # reports, retries and cancel work unchanged); ``campaign_seq`` orders them.
            "ALTER TABLE messages ADD COLUMN campaign_id TEXT",
            "ALTER TABLE messages ADD COLUMN campaign_seq INTEGER",
            "CREATE INDEX messages_campaign ON messages (campaign_id, campaign_seq)",
            "CREATE INDEX messages_campaign_status ON messages (campaign_id, status)",
        ),
    ),
    (
        12,
        "bulk sends: the instance committing a campaign",
        (
            # On a shared store a starting instance removes only the unanswered campaigns
            # of instances that are gone (never one a live peer is still committing).
            "ALTER TABLE campaigns ADD COLUMN created_by TEXT",
        ),
    ),
)

CURRENT_VERSION: Final = MIGRATIONS[-1][0]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations; return the schema version now in force."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    if done and max(done) > CURRENT_VERSION:
        from gateway.errors import StoreError  # noqa: PLC0415 - avoid an import cycle at load

        raise StoreError(
            f"database schema version {max(done)} is newer than this gateway ({CURRENT_VERSION})"
        )
    for version, description, statements in MIGRATIONS:
        if version in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                (version, description, time.time()),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return CURRENT_VERSION
