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
