"""Durable storage of the gateway: every SQL statement lives under this package.

The rest of the gateway codes against ``Store`` (``interface.py``) and the records of
``records.py``; ``SqliteStore`` is the embedded default backend, ``PostgresStore``
(``postgresql/``) the one several instances share; ``build_backend`` picks one.
"""

from __future__ import annotations

from gateway.store.factory import Backend, build_backend
from gateway.store.interface import Store
from gateway.store.records import (
    FINAL_RECIPIENT_STATES,
    Batch,
    CancelPlan,
    MessageRecord,
    NewMessage,
    PartRef,
    RecipientRecord,
    ReplacePlan,
)
from gateway.store.sqlite import SqliteStore

__all__ = [
    "FINAL_RECIPIENT_STATES",
    "Backend",
    "Batch",
    "CancelPlan",
    "MessageRecord",
    "NewMessage",
    "PartRef",
    "RecipientRecord",
    "ReplacePlan",
    "SqliteStore",
    "Store",
    "build_backend",
]
