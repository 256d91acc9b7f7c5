"""Records of bulk sends (``/v1/batches``, DESIGN.md section 16) exchanged with the store.

A campaign is stored as ordinary messages, one per SubmitReq (so dispatch, reports,
retries and cancels need nothing new), tied together by ``campaign_id`` and ordered by
``campaign_seq``. While its recipients are being committed it is ``preparing`` and its
SubmitReqs are held; ``open_campaign`` releases them all in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

#: Campaign states; the last two are final.
CAMPAIGN_STATES: Final = ("preparing", "queued", "sending", "sent", "completed", "canceled")
#: States in which the campaign still moves on by itself (watched for changes).
ACTIVE_CAMPAIGN_STATES: Final = ("queued", "sending", "sent")
#: ``events``: one ``batch.status`` per campaign change (always), plus ``message.status``
#: per recipient only with ``per_recipient``.
CAMPAIGN_EVENTS: Final = ("batch", "per_recipient")


@dataclass(frozen=True, slots=True, kw_only=True)
class NewCampaign:
    id: str
    api_key: str
    events: str
    callback_url: str | None
    client_ref: str | None
    idempotency_key: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class InvalidLine:
    """An input line that is no recipient: 1-based line (CSV) or position (JSON ``to``)."""

    line: int
    value: str
    error: str


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """What ``add_campaign_chunk`` committed.

    ``refused``: ``(index in the chunk, code, message)`` of recipients refused by consent,
    opt-out or a cap (stored ``rejected``); ``submits``: SubmitReqs per route.
    """

    accepted: int
    refused: list[tuple[int, str, str]] = field(default_factory=list)
    submits: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignRecord:
    id: str
    api_key: str
    status: str
    events: str
    callback_url: str | None
    client_ref: str | None
    recipients: int
    #: Recipients by state (every recipient state, zeros included).
    counts: dict[str, int]
    invalid_count: int
    invalid: tuple[InvalidLine, ...]
    created_at: float
    updated_at: float

    @property
    def progress(self) -> float:
        """Share of the recipients no longer waiting to be sent."""
        if self.recipients == 0:
            return 1.0
        return round(1 - self.counts.get("queued", 0) / self.recipients, 4)


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignRecipient:
    """One recipient of a campaign, as ``GET /v1/batches/{id}/recipients`` lists it."""

    seq: int
    idx: int
    message_id: str
    to: str
    status: str
    mm7_message_id: str | None
    error: str | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class CancelPage:
    """One page of a campaign cancel: queued SubmitReqs canceled, where to go on."""

    canceled: int
    #: ``campaign_seq`` to continue after; None: the whole campaign was gone through.
    next_after: int | None
