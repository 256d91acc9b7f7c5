"""SQL of sender pools: consent records and their append-only history, the sticky sender
of each (pool, number) and the sends counted by the daily cap.

The checks of a pool message run in the transaction that creates it
(``messages.create_message``), so two concurrent submissions cannot both pass a cap, and
a keyword's consent change commits with the inbound message that carried it.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from gateway.store.records import DAY_SECONDS, ConsentChange, ConsentRecord, NewMessage

#: ``pool_sends`` rows are needed for 24 h; retention drops those older than this.
POOL_SENDS_KEEP_SECONDS: Final = 2 * DAY_SECONDS


def set_consent(conn: sqlite3.Connection, change: ConsentChange) -> None:
    """Upsert the current record and append the change to the history (never rewritten)."""
    conn.execute(
        "INSERT INTO consent (pool, number, status, source, at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (pool, number) DO UPDATE SET "
        "status = excluded.status, source = excluded.source, at = excluded.at, "
        "updated_at = excluded.updated_at",
        (change.pool, change.number, change.status, change.source, change.at, change.recorded_at),
    )
    conn.execute(
        "INSERT INTO consent_history (pool, number, status, source, reason, at, recorded_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            change.pool, change.number, change.status, change.source, change.reason,
            change.at, change.recorded_at,
        ),
    )  # fmt: skip


def get_consent(conn: sqlite3.Connection, pool: str, number: str) -> ConsentRecord | None:
    row = conn.execute(
        "SELECT status, source, at, updated_at FROM consent WHERE pool = ? AND number = ?",
        (pool, number),
    ).fetchone()
    if row is None:
        return None
    history = tuple(
        ConsentChange(
            pool=pool, number=number, status=h[0], source=h[1], reason=h[2], at=float(h[3]),
            recorded_at=float(h[4]),
        )
        for h in conn.execute(
            "SELECT status, source, reason, at, recorded_at FROM consent_history "
            "WHERE pool = ? AND number = ? ORDER BY id",
            (pool, number),
        )
    )  # fmt: skip
    return ConsentRecord(
        pool=pool,
        number=number,
        status=str(row[0]),
        source=str(row[1]),
        at=float(row[2]),
        updated_at=float(row[3]),
        history=history,
    )


def sticky_senders(conn: sqlite3.Connection, pool: str, numbers: list[str]) -> dict[str, str]:
    """The last sender each number got messages from in this pool."""
    found: dict[str, str] = {}
    for number in numbers:
        row = conn.execute(
            "SELECT sender FROM pool_recipients WHERE pool = ? AND number = ?", (pool, number)
        ).fetchone()
        if row is not None:
            found[number] = str(row[0])
    return found


def refusals(conn: sqlite3.Connection, new: NewMessage, now: float) -> dict[int, tuple[str, str]]:
    """Recipients of a pool message its consent rule or daily cap refuses:
    ``index -> (code, message)``."""
    rules = new.pool_rules
    if rules is None:
        return {}
    refused: dict[int, tuple[str, str]] = {}
    for index, number in enumerate(new.recipients):
        row = conn.execute(
            "SELECT status FROM consent WHERE pool = ? AND number = ?", (rules.pool, number)
        ).fetchone()
        status = row[0] if row is not None else None
        if status == "opted_out":
            refused[index] = (
                "recipient_opted_out",
                f"the recipient opted out of pool {rules.pool}",
            )
        elif rules.consent == "opt_in" and status != "opted_in":
            refused[index] = ("consent_required", f"pool {rules.pool} needs a recorded opt-in")
        elif rules.max_per_day is not None:
            sent = conn.execute(
                "SELECT COUNT(*) FROM pool_sends WHERE pool = ? AND number = ? AND at > ?",
                (rules.pool, number, now - DAY_SECONDS),
            ).fetchone()[0]
            if int(sent) >= rules.max_per_day:
                refused[index] = (
                    "frequency_capped",
                    f"{rules.max_per_day} message(s) from pool {rules.pool} in the last 24 h",
                )
    return refused


def record_sends(conn: sqlite3.Connection, new: NewMessage, accepted: list[int]) -> None:
    """Count accepted recipients against the cap and remember their (sticky) sender."""
    if new.pool is None:
        return
    conn.executemany(
        "INSERT INTO pool_sends (pool, number, at) VALUES (?, ?, ?)",
        [(new.pool, new.recipients[i], new.created_at) for i in accepted],
    )
    conn.executemany(
        "INSERT INTO pool_recipients (pool, number, sender, last_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (pool, number) DO UPDATE SET sender = excluded.sender, "
        "last_at = excluded.last_at",
        [
            (new.pool, new.recipients[i], new.sender_of(i), new.created_at)
            for i in accepted
            if new.sender_of(i)
        ],
    )


def purge_pool_sends(conn: sqlite3.Connection, limit: int) -> int:
    """Sends older than two days before the newest one (the cap looks back 24 h)."""
    cur = conn.execute(
        "DELETE FROM pool_sends WHERE rowid IN (SELECT rowid FROM pool_sends WHERE at < "
        "(SELECT MAX(at) FROM pool_sends) - ? LIMIT ?)",
        (POOL_SENDS_KEEP_SECONDS, limit),
    )
    return max(cur.rowcount, 0)
