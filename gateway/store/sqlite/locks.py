"""Row locks that order concurrent transactions on one message, written so that both
backends run them.

SQLite runs one write transaction at a time, so these cost an index lookup and change
nothing. PostgreSQL runs many at once at READ COMMITTED: the no-op ``UPDATE`` takes the
message row's lock until commit, so a second transaction changing the same message waits
for the first and then (each statement reads what was committed before it) computes the
message's status and events from every recipient, the first one's changes included.
Take the lock before reading what the change depends on.
"""

from __future__ import annotations

import sqlite3


def lock_message(conn: sqlite3.Connection, message_id: str) -> None:
    conn.execute("UPDATE messages SET updated_at = updated_at WHERE id = ?", (message_id,))


def lock_message_of_batch(conn: sqlite3.Connection, batch_id: int) -> None:
    row = conn.execute("SELECT message_id FROM batches WHERE id = ?", (batch_id,)).fetchone()
    if row is not None:
        lock_message(conn, str(row[0]))
