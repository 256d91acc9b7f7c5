"""Membership and shared rates on a PostgreSQL store.

A heartbeat records the instance and renews the leases of everything it holds (batches
in flight, webhook events being sent, SMS being handed to Kannel), so a lease runs out
only when its instance stopped beating. A route's token bucket is one row updated under
its row lock with the database's clock (``clock_timestamp()``), so every instance draws
from the same bucket whatever its own clock says.
"""

from __future__ import annotations

import sqlite3

_CLOCK = "extract(epoch FROM clock_timestamp())::float8"


def heartbeat(conn: sqlite3.Connection, instance_id: str, now: float, lease_until: float) -> None:
    conn.execute(
        "INSERT INTO instances (instance_id, started_at, last_seen) VALUES (?, ?, ?) "
        "ON CONFLICT (instance_id) DO UPDATE SET last_seen = excluded.last_seen",
        (instance_id, now, now),
    )
    for statement in (
        "UPDATE batches SET lease_until = ? WHERE claimed_by = ? AND state = 'in_flight'",
        "UPDATE outbox SET lease_until = ? WHERE claimed_by = ? AND state = 'pending'",
        "UPDATE sms_intents SET lease_until = ? WHERE claimed_by = ? AND state = 'sending'",
    ):
        conn.execute(statement, (lease_until, instance_id))


def live_instances(conn: sqlite3.Connection, since: float) -> int:
    row = conn.execute("SELECT COUNT(*) FROM instances WHERE last_seen >= ?", (since,)).fetchone()
    return int(row[0])


def leave(conn: sqlite3.Connection, instance_id: str) -> None:
    conn.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,))


def take_send_token(conn: sqlite3.Connection, route: str, rate: float, burst: float) -> float:
    """Take one token of the route's shared bucket (``rate`` a second, at most ``burst``
    saved up); 0 when taken, else the seconds until one is free (none taken)."""
    if rate <= 0:
        return 0.0
    capacity = max(1.0, burst)
    conn.execute(
        f"INSERT INTO send_tokens (route, tokens, updated_at) VALUES (?, ?, {_CLOCK}) "  # noqa: S608 - constant
        "ON CONFLICT (route) DO NOTHING",
        (route, capacity),
    )
    # Lock first, then read the clock: a clock read before waiting for a peer's lock
    # would credit the wait twice.
    conn.execute("SELECT 1 FROM send_tokens WHERE route = ? FOR UPDATE", (route,))
    (available,) = conn.execute(
        "UPDATE send_tokens s SET tokens = CASE WHEN a.avail >= 1 THEN a.avail - 1 "  # noqa: S608 - constant
        "ELSE a.avail END, updated_at = a.clock FROM (SELECT LEAST(?, t.tokens + "
        "GREATEST(0, k.clock - t.updated_at) * ?) AS avail, k.clock FROM send_tokens t, "
        f"(SELECT {_CLOCK} AS clock) k WHERE t.route = ?) a WHERE s.route = ? RETURNING a.avail",
        (capacity, rate, route, route),
    ).fetchone()
    available = float(available)
    return 0.0 if available >= 1 else (1.0 - available) / rate
