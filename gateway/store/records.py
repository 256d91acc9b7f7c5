"""Plain records exchanged with the store (no SQL here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from gateway.errors import ForbiddenError

#: Recipient states after which nothing more will happen (a stale report cannot undo them).
FINAL_RECIPIENT_STATES: Final = frozenset(
    {"delivered", "read", "failed", "expired", "rejected", "canceled"}
)
#: A recipient gone over to the SMS fallback, before and after Kannel accepted its SMS.
SMS_STATES: Final = frozenset({"sms_queued", "sms_submitted"})
RECIPIENT_STATES: Final = frozenset({"queued", "submitted"}) | SMS_STATES | FINAL_RECIPIENT_STATES


@dataclass(frozen=True, slots=True)
class PartRef:
    """A content part of an outbound message; the bytes live in the media store."""

    content_type: str
    sha256: str
    size: int
    content_id: str
    name: str | None = None


#: Why a recipient is refused at submission (its ``error`` starts with the code; all
#: refused: the POST answers 403 with the first recipient's code).
REFUSAL_CODES: Final = ("consent_required", "recipient_opted_out", "frequency_capped")
CONSENT_STATUSES: Final = ("opted_in", "opted_out")
DAY_SECONDS: Final = 86_400.0


class RecipientsRefused(ForbiddenError):  # noqa: N818 - read as a condition, like its siblings
    """Every recipient was refused (403 with the first one's code); nothing was stored.

    ``refusals``: ``(index, code)`` of each, for the refusal metrics.
    """

    def __init__(self, message: str, *, code: str, refusals: list[tuple[int, str]]) -> None:
        super().__init__(message, field="to", code=code)
        self.refusals = refusals


@dataclass(frozen=True, slots=True)
class PoolRules:
    """The consent and frequency rules a pool message is checked against, inside the
    transaction that creates it (so concurrent submissions cannot both pass a cap)."""

    pool: str
    consent: str  # "opt_in" | "opt_out"
    max_per_day: int | None = None


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
    #: The message goes to its recipients as SMS only (a no-MMS route with SMS fallback):
    #: no batches, one SMS intent per recipient (cause ``no_mms``).
    sms_only: bool = False
    #: The pool the senders were chosen from, and its rules (checked in the transaction).
    pool: str | None = None
    pool_rules: PoolRules | None = None
    #: Sender of each recipient (parallel to ``recipients``; empty: ``sender`` for all).
    recipient_senders: tuple[str | None, ...] = ()
    #: When each recipient may first be sent (quiet hours; empty: ``send_at`` for all).
    recipient_due: tuple[float, ...] = ()
    #: Recipients refused before the transaction: ``(index, code, message)``.
    refusals: tuple[tuple[int, str, str], ...] = ()
    #: The sender each recipient's opt-out (the STOP suppression list) is checked
    #: against, in the transaction that creates the message (parallel to ``recipients``;
    #: ``""``: not checked; empty: no check at all). A hit is that recipient refused with
    #: ``recipient_opted_out``, as for ``refusals``.
    optout_senders: tuple[str, ...] = ()

    def sender_of(self, index: int) -> str | None:
        return self.recipient_senders[index] if self.recipient_senders else self.sender

    def due_of(self, index: int) -> float:
        return self.recipient_due[index] if self.recipient_due else self.send_at


def plan_batches(
    new: NewMessage, refused: set[int]
) -> list[tuple[str, str | None, float, list[int]]]:
    """SubmitReqs of a new message: ``(route, sender, due, recipient indexes)``.

    A batch shares one route, one sender and one due time, and holds at most the route's
    ``max_recipients_per_submit``; refused recipients get none.
    """
    groups: dict[tuple[str, str | None, float], list[int]] = {}
    for index, route in enumerate(new.recipient_routes):
        if index not in refused:
            groups.setdefault((route, new.sender_of(index), new.due_of(index)), []).append(index)
    plan: list[tuple[str, str | None, float, list[int]]] = []
    for (route, sender, due), members in groups.items():
        size = max(1, new.batch_sizes.get(route, 1))
        plan.extend(
            (route, sender, due, members[start : start + size])
            for start in range(0, len(members), size)
        )
    return plan


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipientRecord:
    address: str
    status: str
    mm7_message_id: str | None = None
    error: str | None = None
    updated_at: float = 0.0
    fallback: str | None = None
    #: The sender this recipient gets messages from (a pool's choice), if not the message's.
    sender: str | None = None


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
    pool: str | None = None


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
    #: The batch's own sender (a pool's choice); None: the message's.
    sender: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentChange:
    """A change of a (pool, number) consent record, with its evidence."""

    pool: str
    number: str
    status: str  # one of CONSENT_STATUSES
    source: str
    #: When the consent was given or withdrawn (the client's word, or the keyword's arrival).
    at: float
    recorded_at: float
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentRecord:
    pool: str
    number: str
    status: str
    source: str
    at: float
    updated_at: float
    #: Every change, oldest first (append-only evidence).
    history: tuple[ConsentChange, ...] = ()


@dataclass(frozen=True, slots=True)
class CancelPlan:
    """What a cancel found: queued batches are canceled in the store already; these remain.

    ``submitted``: ``(batch_id, route, mm7_message_id)`` to CancelReq now; ``in_flight``:
    batches whose SubmitReq is on the wire (flagged: the worker cancels each one when its
    SubmitRsp is recorded).
    """

    found: bool
    submitted: list[tuple[int, str, str]] = field(default_factory=list)
    in_flight: int = 0
    #: Batches the MMSC accepted without a MessageID: no CancelReq can name them.
    without_message_id: int = 0


@dataclass(frozen=True, slots=True)
class ReplacePlan:
    """Batches of a message by where they stand (for ``PUT /v1/messages/{id}``).

    ``submitted``: ``(batch_id, route, mm7_message_id)`` accepted by the MMSC and not yet
    final, which a ReplaceReq can still change.
    """

    queued: int = 0
    in_flight: int = 0
    submitted: list[tuple[int, str, str]] = field(default_factory=list)
    #: Every route the message's recipients go to (the new content must fit them all).
    routes: tuple[str, ...] = ()
    #: ``(batch_id, next_attempt_at)`` of the queued batches held for the replacement.
    held: list[tuple[int, float]] = field(default_factory=list)


def iso_time(timestamp: float | None) -> str | None:
    """An ISO 8601 UTC time (``Z``) for a Unix time, as the API and webhooks show it."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


# -- reports, inbound messages and webhook events ------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportRow:
    """A decoded DeliveryReportReq/ReadReplyReq, ready to store."""

    kind: str  # "delivery" | "read"
    mmsc: str
    dedupe_key: str
    mm7_message_id: str | None
    recipient: str | None
    sender: str | None
    mm_status: str | None
    mm_status_extension: str | None
    status_text: str | None
    mapped_state: str | None
    report_at: float
    received_at: float
    transaction_id: str | None


@dataclass(frozen=True, slots=True)
class ReportResult:
    #: ``applied``, ``unchanged``, ``stale``, ``unmatched`` or ``duplicate``.
    outcome: str
    message_id: str | None = None
    state: str | None = None
    #: When the message was accepted (for the report latency metric), if it correlated.
    accepted_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundPart:
    content_type: str
    sha256: str
    size: int
    content_id: str | None
    content_location: str | None
    charset: str | None
    text: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundRow:
    id: str
    mmsc: str
    dedupe_key: str
    api_key: str | None
    sender: str | None
    recipient: str | None
    recipients: tuple[str, ...]
    subject: str | None
    text: str | None
    linked_id: str | None
    transaction_id: str | None
    optout: str | None
    sent_at: float | None
    received_at: float
    parts: tuple[InboundPart, ...]
    #: A pool keyword's consent change, committed with the message.
    consent: ConsentChange | None = None


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: int
    event_id: str
    event_type: str
    stream: str
    api_key: str | None
    url: str
    body: str
    attempts: int
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsJob:
    """A claimed SMS fallback intent with what its SMS is made of."""

    id: int
    message_id: str
    cause: str
    attempts: int
    to: str
    sender: str | None
    route: str
    subject: str | None
    text: str | None
    parts: tuple[PartRef, ...]
    expires_at: float


@dataclass(frozen=True, slots=True)
class ShortLink:
    """What ``/m/{code}`` points at: a message's stored parts, until ``expires_at``."""

    message_id: str
    parts: tuple[PartRef, ...]
    expires_at: float
