"""Durable storage contract of the gateway.

The rest of the gateway codes against ``Store`` (a ``typing.Protocol``); ``SqliteStore``
is the embedded default. Every method is a coroutine whose write side is durable when it
returns (a PostgreSQL backend can implement the same contract later: the SQL is kept
portable: no SQLite-only syntax beyond ``INSERT ... ON CONFLICT``).
"""

from __future__ import annotations

from gateway.store.records import (
    FINAL_RECIPIENT_STATES,
    Batch,
    MessageRecord,
    NewMessage,
    PartRef,
    RecipientRecord,
)
from gateway.store.sqlite import SqliteStore

__all__ = [
    "FINAL_RECIPIENT_STATES",
    "Batch",
    "MessageRecord",
    "NewMessage",
    "PartRef",
    "RecipientRecord",
    "SqliteStore",
]
