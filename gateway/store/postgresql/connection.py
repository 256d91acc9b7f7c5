"""The connection type the PostgreSQL SQL modules take, and small helpers over it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

import psycopg

#: A pooled connection inside the transaction of one store operation (tuple rows).
Conn: TypeAlias = psycopg.Connection[tuple[Any, ...]]


def executemany(conn: Conn, statement: str, rows: Iterable[Sequence[Any]]) -> None:
    """Run one statement for many rows (psycopg pipelines them in one round trip)."""
    rows = list(rows)
    if rows:
        with conn.cursor() as cur:
            cur.executemany(statement, rows)


def lock_message(conn: Conn, message_id: str) -> None:
    """Serialise the changes to one message's recipients across instances.

    Its status is computed from all its recipients, so two transactions changing
    different recipients of one message at once could each write a status that misses
    the other's change; the message row lock orders them.
    """
    conn.execute("SELECT 1 FROM messages WHERE id = %s FOR UPDATE", (message_id,))


def lock_mm7_message_id(conn: Conn, mm7_message_id: str) -> None:
    """Order a report for an MM7 MessageID against recording that MessageID.

    Without it a report could miss the batch (not committed yet) while the batch's commit
    misses the report (not committed yet either), and the report would stay unmatched.
    """
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (mm7_message_id,))
