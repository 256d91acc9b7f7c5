# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Delivery and read reports: the MMStatus → recipient-state table and the update policy.

Theory of operation. A report names an MM7 ``MessageID`` (the one our SubmitRsp
returned) and a recipient. It is correlated to a stored recipient by that MessageID
plus the phone number, compared on digits only (``+82…`` == ``82…``), trying the
``Recipient`` element first and the ``Sender`` element second (one real MMSC swaps
them). States fall into three groups:

* non-final: ``queued``, ``submitted``;
* soft-final: ``rejected`` reached through a report. A real MMSC sends ``Rejected`` for
  every attempt it will retry, so a *newer* report may still replace it;
* hard-final: ``delivered``, ``read``, ``expired``, ``failed``, ``canceled``. Only a read
  reply may still move ``delivered`` on to ``read``.

A report whose time (its ``Date``, or the time we received it when it has none) is older
than the report that set the current state is *stale* and changes nothing; equal times
fall back to arrival order ("last report wins"). Exact duplicates are detected before
this policy runs (see ``sql.py``). Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol.addresses import digits_only


@dataclass(frozen=True, slots=True)
class StatusMapping:
    """What one MMStatus value means for the recipient."""

    #: Canonical MMStatus name (also the metric label); ``other`` for values we do not know.
    label: str
    #: The recipient state it leads to; ``None`` means "no change" (we learn nothing).
    state: str | None


#: MM7_delivery_report.REQ ``MMStatus`` (TS 23.140 §8.7.6), keyed by lower case.
DELIVERY_STATUS_TABLE: Final[dict[str, StatusMapping]] = {
    "retrieved": StatusMapping("Retrieved", "delivered"),
    # Forwarded to another user or an e-mail address: the MMSC delivered it onwards.
    "forwarded": StatusMapping("Forwarded", "delivered"),
    # Still trying: keep the recipient submitted (a later report follows).
    "deferred": StatusMapping("Deferred", "submitted"),
    # "The MMS Relay/Server cannot determine the status": not a failure and not a
    # delivery; the recipient stays submitted and the event tells the application.
    "indeterminate": StatusMapping("Indeterminate", "submitted"),
    "expired": StatusMapping("Expired", "expired"),
    # Soft-final: a newer report replaces it (retried attempts, see the module docstring).
    "rejected": StatusMapping("Rejected", "rejected"),
    "unrecognised": StatusMapping("Unrecognised", "failed"),
    "unrecognized": StatusMapping("Unrecognised", "failed"),
    "deliveryconditionnotmet": StatusMapping("DeliveryConditionNotMet", "failed"),
}

#: MM7_read_reply.REQ ``MMStatus`` (TS 23.140 §8.7.7).
READ_STATUS_TABLE: Final[dict[str, StatusMapping]] = {
    "read": StatusMapping("Read", "read"),
    # Deleted without being read: it was delivered.
    "deleted": StatusMapping("Deleted", "delivered"),
    "indeterminate": StatusMapping("Indeterminate", None),
}

#: Every label the delivery-report metric can carry (pre-created at zero).
DELIVERY_STATUS_LABELS: Final = (
    *sorted({m.label for m in DELIVERY_STATUS_TABLE.values()}),
    "numeric_success",
    "numeric_failure",
    "other",
)

HARD_FINAL: Final = frozenset({"delivered", "read", "expired", "failed", "canceled"})
SOFT_FINAL: Final = frozenset({"rejected"})


def map_delivery_status(mm_status: str | None) -> StatusMapping:
    """Map a DeliveryReportReq ``MMStatus``.

    Some MMSCs (a Korean carrier among them) send a numeric status: ``1000`` means
    delivered, any other number a failure. Unknown words change nothing.
    """
    value = (mm_status or "").strip()
    if value.isdigit():
        if int(value) == 1000:
            return StatusMapping("numeric_success", "delivered")
        return StatusMapping("numeric_failure", "failed")
    key = value.lower().replace(" ", "").replace("_", "")
    return DELIVERY_STATUS_TABLE.get(key, StatusMapping("other", None))


def map_read_status(mm_status: str | None) -> StatusMapping:
    key = (mm_status or "").strip().lower()
    return READ_STATUS_TABLE.get(key, StatusMapping("other", None))


def next_state(
    current: str, current_at: float | None, new: str | None, report_at: float
) -> str | None:
    """The state a report moves a recipient to, or ``None`` when it changes nothing.

    Args:
        current: the recipient's state now.
        current_at: time of the report that set ``current`` (``None``: no report yet).
        new: the mapped state of the incoming report (``None``: no information).
        report_at: time of the incoming report.
    """
    if new is None or current == "read":
        return None
    if current in HARD_FINAL:
        # A read reply may follow a delivery report; nothing else reopens a final state.
        return "read" if current == "delivered" and new == "read" else None
    if current_at is not None and report_at < current_at:
        return None  # stale: an older report arriving after a newer one
    return new


def same_number(a: str | None, b: str | None) -> bool:
    """Compare phone numbers on digits, tolerating a missing ``+`` or a national prefix.

    ``+821012345678`` matches ``821012345678`` and ``01012345678`` (the last nine
    digits agree and neither side is a short code).
    """
    da, db = digits_only(a or ""), digits_only(b or "")
    if not da or not db:
        return False
    if da == db:
        return True
    shorter = min(len(da), len(db))
    return shorter >= 9 and da[-9:] == db[-9:]


def pick_recipient(
    candidates: list[tuple[str, int, str]], numbers: tuple[str | None, ...]
) -> tuple[str, int] | None:
    """Choose the recipient a report is about among those sharing its MessageID.

    Args:
        candidates: ``(message_id, idx, address)`` of recipients with that MM7 MessageID.
        numbers: the report's addresses in order of preference (Recipient, then Sender:
            one MMSC swaps them).

    Returns:
        ``(message_id, idx)``, or ``None`` when nothing matches.
    """
    for number in numbers:
        for message_id, idx, address in candidates:
            if same_number(address, number):
                return message_id, idx
    # A MessageID that names one recipient only identifies it even when the MMSC writes
    # the number in a form we cannot match (or leaves it out).
    if len(candidates) == 1:
        return candidates[0][0], candidates[0][1]
    return None
