"""Plain records exchanged with the store (no SQL here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

#: Recipient states after which nothing more will happen (a stale report cannot undo them).
FINAL_RECIPIENT_STATES: Final = frozenset(
    {"delivered", "read", "failed", "expired", "rejected", "canceled"}
)
RECIPIENT_STATES: Final = frozenset({"queued", "submitted"}) | FINAL_RECIPIENT_STATES


@dataclass(frozen=True, slots=True)
class PartRef:
    """A content part of an outbound message; the bytes live in the media store."""

    content_type: str
    sha256: str
    size: int
    content_id: str
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewMessage:
    """What the API hands to the store for one accepted submission."""

    id: str
    api_key: str
    route: str
    recipients: tuple[str, ...]
    #: Route of each recipient (parallel to ``recipients``); batches never mix routes.
    recipient_routes: tuple[str, ...]
    sender: str | None
    subject: str | None
    text: str | None
    parts: tuple[PartRef, ...]
    #: Recipients per SubmitReq, per route (the MMSC's max_recipients_per_submit).
    batch_sizes: dict[str, int]
    created_at: float
    send_at: float
    expires_at: float
    priority: str | None = None
    delivery_report: bool = True
    read_report: bool = False
    callback_url: str | None = None
    client_ref: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    fallback: str | None = None
    original_bytes: int | None = None
    adapted_bytes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipientRecord:
    address: str
    status: str
    mm7_message_id: str | None = None
    error: str | None = None
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRecord:
    id: str
    api_key: str
    route: str
    status: str
    sender: str | None
    subject: str | None
    text: str | None
    parts: tuple[PartRef, ...]
    created_at: float
    updated_at: float
    send_at: float
    expires_at: float
    attempts: int
    last_error: str | None
    priority: str | None = None
    delivery_report: bool = True
    read_report: bool = False
    callback_url: str | None = None
    client_ref: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    fallback: str | None = None
    original_bytes: int | None = None
    adapted_bytes: int | None = None
    recipients: tuple[RecipientRecord, ...] = field(default=())


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """One MM7 SubmitReq worth of recipients of a message, as claimed by a dispatcher."""

    id: int
    message_id: str
    route: str
    attempts: int
    recipients: tuple[str, ...]
    expires_at: float
    transaction_id: str
