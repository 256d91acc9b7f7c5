"""Durable storage of the gateway.

The rest of the gateway codes against ``Store`` (``gateway/store/interface.py``, a
``typing.Protocol``, where the portability rules are written down); ``SqliteStore`` is
the embedded default.
"""

from __future__ import annotations

from gateway.store.interface import Store
from gateway.store.records import (
    FINAL_RECIPIENT_STATES,
    Batch,
    MessageRecord,
    NewMessage,
    PartRef,
    RecipientRecord,
)
from gateway.store.sqlite import CancelPlan, ReplacePlan, SqliteStore

__all__ = [
    "FINAL_RECIPIENT_STATES",
    "Batch",
    "CancelPlan",
    "MessageRecord",
    "NewMessage",
    "PartRef",
    "RecipientRecord",
    "ReplacePlan",
    "SqliteStore",
    "Store",
]
