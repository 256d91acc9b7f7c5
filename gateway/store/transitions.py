"""The recipient state machine the store enforces, and how reports find their recipient.

States fall into three groups:

* non-final: ``queued``, ``submitted``;
* soft-final: ``rejected`` reached through a report. A real MMSC sends ``Rejected`` for
  every attempt it will retry, so a *newer* report may still replace it;
* hard-final: ``delivered``, ``read``, ``expired``, ``failed``, ``canceled``. Only a read
  reply may still move ``delivered`` on to ``read``.

A report older than the one that set the current state is stale and changes nothing.
The store applies these rules inside the transaction that stores the report, so every
backend enforces the same machine. Pure functions: no I/O, no clock.
"""

from __future__ import annotations

from typing import Final

from protocol.addresses import digits_only

HARD_FINAL: Final = frozenset({"delivered", "read", "expired", "failed", "canceled"})
SOFT_FINAL: Final = frozenset({"rejected"})
#: Gone over to the SMS fallback: only Kannel's reports move these, never MM7 ones.
SMS_PENDING: Final = frozenset({"sms_queued", "sms_submitted"})


#: Mixed final states collapse to the best outcome, in this order.
_FINAL_PRECEDENCE: Final = ("read", "delivered", "expired", "rejected", "failed", "canceled")


def aggregate_status(statuses: list[str]) -> str:
    """The message status implied by its recipients' statuses."""
    if not statuses:
        return "queued"
    distinct = set(statuses)
    if len(distinct) == 1:
        return statuses[0]
    if "queued" in distinct:
        return "queued"
    for pending in ("sms_queued", "submitted", "sms_submitted"):
        if pending in distinct:
            return pending
    for state in _FINAL_PRECEDENCE:
        if state in distinct:
            return state
    return statuses[0]


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
    if new is None or current == "read" or current in SMS_PENDING:
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
