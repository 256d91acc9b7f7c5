# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Delivery and read reports: what each ``MMStatus`` value means for the recipient.

A report names an MM7 ``MessageID`` (the one our SubmitRsp returned) and a recipient.
This table turns its ``MMStatus`` into the state it leads to; the store then applies it
under the rules of ``gateway.store.transitions`` (final states, stale reports) in the
transaction that stores the report. Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


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
