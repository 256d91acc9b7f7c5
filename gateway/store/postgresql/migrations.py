"""Numbered schema migrations of the PostgreSQL backend.

The same version numbers as ``gateway/store/sqlite/migrations.py`` (a version means the
same schema on both backends), written for PostgreSQL: identity columns, DOUBLE PRECISION
times. All pending migrations run in one transaction under a transaction-level advisory
lock, so several instances starting at once apply each migration exactly once (the
others wait, then find nothing to do). Never edit a released migration: add a new one.
"""

from __future__ import annotations

import time
from typing import Final

from gateway.errors import StoreError
from gateway.store.postgresql.connection import Conn

#: ``pg_advisory_xact_lock`` key of schema changes ("mm7gw" + "mig" in ASCII, any constant).
MIGRATION_LOCK: Final = 0x6D6D3767776D6967

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
                original_bytes BIGINT,
                adapted_bytes BIGINT,
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                send_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE UNIQUE INDEX messages_idempotency ON messages (api_key, idempotency_key)",
            """CREATE TABLE recipients (
                message_id TEXT NOT NULL,
                idx INTEGER NOT NULL,
                address TEXT NOT NULL,
                status TEXT NOT NULL,
                batch_id BIGINT,
                mm7_message_id TEXT,
                error TEXT,
                updated_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (message_id, idx)
            )""",
            "CREATE INDEX recipients_mm7_id ON recipients (mm7_message_id)",
            "CREATE INDEX recipients_batch ON recipients (batch_id)",
            """CREATE TABLE batches (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                message_id TEXT NOT NULL,
                route TEXT NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                transaction_id TEXT NOT NULL,
                mm7_message_id TEXT,
                last_error TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX batches_due ON batches (route, state, next_attempt_at)",
            "CREATE INDEX batches_message ON batches (message_id)",
            # SQLite creates this on first use; here concurrent first uses would race.
            "CREATE TABLE healthcheck (id INTEGER PRIMARY KEY, at DOUBLE PRECISION)",
        ),
    ),
    (
        2,
        "callbacks: delivery reports, inbound messages, webhook outbox, suppressions",
        (
            """CREATE TABLE delivery_reports (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
                report_at DOUBLE PRECISION NOT NULL,
                received_at DOUBLE PRECISION NOT NULL,
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
                sent_at DOUBLE PRECISION,
                received_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX inbound_messages_received ON inbound_messages (received_at, id)",
            """CREATE TABLE inbound_parts (
                inbound_id TEXT NOT NULL,
                idx INTEGER NOT NULL,
                content_type TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                size BIGINT NOT NULL,
                content_id TEXT,
                content_location TEXT,
                charset TEXT,
                body_text TEXT,
                PRIMARY KEY (inbound_id, idx)
            )""",
            "CREATE INDEX inbound_parts_sha256 ON inbound_parts (sha256)",
            """CREATE TABLE outbox (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                event_id TEXT NOT NULL UNIQUE,
                type TEXT NOT NULL,
                stream TEXT NOT NULL,
                api_key TEXT,
                url TEXT NOT NULL,
                body TEXT NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at DOUBLE PRECISION NOT NULL,
                last_error TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX outbox_due ON outbox (state, next_attempt_at)",
            "CREATE INDEX outbox_stream ON outbox (stream, state, id)",
            """CREATE TABLE webhook_targets (
                api_key TEXT PRIMARY KEY,
                url TEXT NOT NULL
            )""",
            """CREATE TABLE suppressions (
                number TEXT NOT NULL,
                short_code TEXT NOT NULL,
                keyword TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (number, short_code)
            )""",
        ),
    ),
    (
        3,
        "cancel requested while a submission is in flight",
        ("ALTER TABLE batches ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",),
    ),
    (
        5,
        "claim leases; media shared by every instance",
        (
            # Who holds an in-flight batch and until when: an instance that dies leaves its
            # lease to run out, then any instance claims the batch again.
            "ALTER TABLE batches ADD COLUMN claimed_by TEXT",
            "ALTER TABLE batches ADD COLUMN lease_until DOUBLE PRECISION",
            # The same for a webhook event being sent, so two instances never send it at
            # once (nor a stream's next event before it is done).
            "ALTER TABLE outbox ADD COLUMN claimed_by TEXT",
            "ALTER TABLE outbox ADD COLUMN lease_until DOUBLE PRECISION",
            """CREATE TABLE media (
                sha256 TEXT PRIMARY KEY,
                size BIGINT NOT NULL,
                data BYTEA NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
)

CURRENT_VERSION: Final = MIGRATIONS[-1][0]


def migrate(conn: Conn) -> int:
    """Apply pending migrations in one transaction; return the schema version in force."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        done = {int(row[0]) for row in conn.execute("SELECT version FROM schema_migrations")}
        if done and max(done) > CURRENT_VERSION:
            raise StoreError(
                f"database schema version {max(done)} is newer than this gateway "
                f"({CURRENT_VERSION})"
            )
        for version, description, statements in MIGRATIONS:
            if version in done:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) "
                "VALUES (%s, %s, %s)",
                (version, description, time.time()),
            )
    return CURRENT_VERSION
