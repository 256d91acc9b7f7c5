"""SQL of the opt-out suppression list: (number, short code) pairs that sent STOP.

Written by an inbound STOP/START (``inbound.store_inbound``, in the transaction of the
message that carried it); read when a message is created (``messages.create_message``)
and by ``Store.suppressed_numbers``.
"""

from __future__ import annotations

import sqlite3


def suppression_key(number: str) -> str:
    """Numbers are compared on digits (``+8210…`` == ``8210…``); other ids verbatim."""
    digits = "".join(ch for ch in number if ch.isdigit())
    return digits or number.strip().lower()


def set_suppression(
    conn: sqlite3.Connection, number: str, short_code: str, action: str, now: float
) -> None:
    """``action`` is ``stop`` (suppress the pair) or ``start`` (lift it)."""
    key, code = suppression_key(number), suppression_key(short_code)
    if action == "stop":
        conn.execute(
            "INSERT INTO suppressions (number, short_code, keyword, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (number, short_code) DO NOTHING",
            (key, code, action, now),
        )
    else:
        conn.execute("DELETE FROM suppressions WHERE number = ? AND short_code = ?", (key, code))


def suppressed_numbers(conn: sqlite3.Connection, pairs: list[tuple[str, str]]) -> list[str]:
    """The numbers of ``(number, sender)`` pairs that are on the suppression list."""
    out = []
    for number, sender in pairs:
        row = conn.execute(
            "SELECT 1 FROM suppressions WHERE number = ? AND short_code = ?",
            (suppression_key(number), suppression_key(sender)),
        ).fetchone()
        if row is not None:
            out.append(number)
    return out
