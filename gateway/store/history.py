"""Records of a message's history and of console searches (no SQL here).

The operator console shows one message's timeline: its batches, every SubmitReq attempt
with the MMSC's answer, the delivery reports matched to it and its webhook events.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.store.records import MessageRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRow:
    """One SubmitReq exchange and its outcome, stored with the batch update it caused."""

    batch_id: int
    message_id: str
    attempt: int
    #: ``submitted``, ``retry``, ``slow_down`` or the final batch state (``rejected``, …).
    outcome: str
    status_code: int | None
    status_text: str | None
    error: str | None
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchRow:
    id: int
    route: str
    state: str
    attempts: int
    transaction_id: str
    mm7_message_id: str | None
    recipients: tuple[str, ...]
    last_error: str | None
    created_at: float
    updated_at: float
    expires_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportEntry:
    kind: str
    mmsc: str
    recipient: str | None
    mm_status: str | None
    status_text: str | None
    mapped_state: str | None
    outcome: str
    report_at: float
    received_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookEntry:
    event_id: str
    event_type: str
    state: str
    attempts: int
    last_error: str | None
    url: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageHistory:
    message: MessageRecord
    batches: tuple[BatchRow, ...]
    attempts: tuple[AttemptRow, ...]
    reports: tuple[ReportEntry, ...]
    webhooks: tuple[WebhookEntry, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageQuery:
    """A console search: ``text`` is a message id, a ``client_ref`` or (part of) a number."""

    text: str | None = None
    status: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
