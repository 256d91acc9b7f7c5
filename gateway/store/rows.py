"""Backend-neutral pieces of the store operations: how rows become records and payloads,
how a message is cut into batches, and what a report does to its recipient.

Each backend keeps its own SQL (``sqlite/``, ``postgresql/``) and calls these, so the
Python logic between the statements exists once. Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from gateway.store.records import MessageRecord, NewMessage, PartRef, RecipientRecord, iso_time
from gateway.store.transitions import HARD_FINAL, next_state

#: Column order every backend selects a message in (``message_from_row`` reads it).
MESSAGE_COLUMNS: Final = (
    "id, api_key, route, status, sender, subject, body_text, parts_json, priority, "
    "delivery_report, read_report, callback_url, client_ref, idempotency_key, request_hash, "
    "fallback, original_bytes, adapted_bytes, attempts, last_error, created_at, updated_at, "
    "send_at, expires_at"
)
#: Column order of a recipient read back with its message.
RECIPIENT_COLUMNS: Final = "address, status, mm7_message_id, error, updated_at"
#: Column order of an inbound message (``inbound_dict`` reads it).
INBOUND_COLUMNS: Final = (
    "id, mmsc, api_key, sender, recipient, recipients_json, subject, body_text, linked_id, "
    "transaction_id, optout, sent_at, received_at"
)
INBOUND_PART_COLUMNS: Final = (
    "idx, content_type, sha256, size, content_id, content_location, charset, body_text"
)
DEAD_LETTER_COLUMNS: Final = (
    "event_id, type, stream, url, attempts, last_error, created_at, updated_at, body"
)


def parts_to_json(parts: tuple[PartRef, ...]) -> str:
    return json.dumps(
        [
            {
                "content_type": p.content_type,
                "sha256": p.sha256,
                "size": p.size,
                "content_id": p.content_id,
                "name": p.name,
            }
            for p in parts
        ],
        separators=(",", ":"),
    )


def parts_from_json(raw: str) -> tuple[PartRef, ...]:
    return tuple(
        PartRef(
            content_type=item["content_type"],
            sha256=item["sha256"],
            size=int(item["size"]),
            content_id=item["content_id"],
            name=item.get("name"),
        )
        for item in json.loads(raw)
    )


def message_values(new: NewMessage) -> tuple[Any, ...]:
    """Values of a new ``messages`` row, in the column order of ``MESSAGE_INSERT_COLUMNS``."""
    return (
        new.id, new.api_key, new.route, new.sender, new.subject, new.text,
        parts_to_json(new.parts), new.priority, int(new.delivery_report), int(new.read_report),
        new.callback_url, new.client_ref, new.idempotency_key, new.request_hash, new.fallback,
        new.original_bytes, new.adapted_bytes, new.created_at, new.created_at, new.send_at,
        new.expires_at,
    )  # fmt: skip


MESSAGE_INSERT_COLUMNS: Final = (
    "id, api_key, route, sender, subject, body_text, parts_json, priority, delivery_report, "
    "read_report, callback_url, client_ref, idempotency_key, request_hash, fallback, "
    "original_bytes, adapted_bytes, created_at, updated_at, send_at, expires_at"
)


def plan_batches(new: NewMessage) -> list[tuple[str, str, list[tuple[int, str]]]]:
    """Cut a message's recipients into batches: ``(route, transaction id, [(idx, address)])``.

    Batches never mix routes and hold at most the route's batch size. The TransactionID is
    fixed for the batch's life (retries keep it, so MMSCs that de-duplicate on it can);
    message id + ordinal is unique without a lookup.
    """
    by_route: dict[str, list[tuple[int, str]]] = {}
    for idx, (address, route) in enumerate(zip(new.recipients, new.recipient_routes, strict=True)):
        by_route.setdefault(route, []).append((idx, address))
    planned: list[tuple[str, str, list[tuple[int, str]]]] = []
    for route, members in by_route.items():
        size = max(1, new.batch_sizes.get(route, 1))
        for start in range(0, len(members), size):
            planned.append(
                (route, f"{new.id}-{len(planned) + 1}", members[start : start + size])
            )
    return planned


def new_message_record(new: NewMessage) -> MessageRecord:
    """What reading a just-created message back would give (every recipient queued)."""
    return MessageRecord(
        id=new.id,
        api_key=new.api_key,
        route=new.route,
        status="queued",
        sender=new.sender,
        subject=new.subject,
        text=new.text,
        parts=new.parts,
        priority=new.priority,
        delivery_report=new.delivery_report,
        read_report=new.read_report,
        callback_url=new.callback_url,
        client_ref=new.client_ref,
        idempotency_key=new.idempotency_key,
        request_hash=new.request_hash,
        fallback=new.fallback,
        original_bytes=new.original_bytes,
        adapted_bytes=new.adapted_bytes,
        attempts=0,
        last_error=None,
        created_at=float(new.created_at),
        updated_at=float(new.created_at),
        send_at=float(new.send_at),
        expires_at=float(new.expires_at),
        recipients=tuple(
            RecipientRecord(address=address, status="queued", updated_at=float(new.created_at))
            for address in new.recipients
        ),
    )


def message_from_row(row: Sequence[Any], recipients: Sequence[Sequence[Any]]) -> MessageRecord:
    """A message from its ``MESSAGE_COLUMNS`` row and its ``RECIPIENT_COLUMNS`` rows."""
    return MessageRecord(
        id=row[0],
        api_key=row[1],
        route=row[2],
        status=row[3],
        sender=row[4],
        subject=row[5],
        text=row[6],
        parts=parts_from_json(row[7]),
        priority=row[8],
        delivery_report=bool(row[9]),
        read_report=bool(row[10]),
        callback_url=row[11],
        client_ref=row[12],
        idempotency_key=row[13],
        request_hash=row[14],
        fallback=row[15],
        original_bytes=row[16],
        adapted_bytes=row[17],
        attempts=int(row[18]),
        last_error=row[19],
        created_at=float(row[20]),
        updated_at=float(row[21]),
        send_at=float(row[22]),
        expires_at=float(row[23]),
        recipients=tuple(
            RecipientRecord(
                address=r[0], status=r[1], mm7_message_id=r[2], error=r[3], updated_at=float(r[4])
            )
            for r in recipients
        ),
    )


# -- webhook events ------------------------------------------------------------------------------


def event_body(event_id: str, event_type: str, now: float, data: dict[str, Any]) -> str:
    return json.dumps(
        {"id": event_id, "type": event_type, "created_at": iso_time(now), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def status_event_data(
    message_id: str,
    status: str,
    client_ref: str | None,
    recipients: Sequence[Sequence[Any]],
    report: dict[str, Any] | None,
) -> dict[str, Any]:
    """``message.status`` data; ``recipients`` are ``RECIPIENT_COLUMNS`` rows."""
    data: dict[str, Any] = {
        "message_id": message_id,
        "status": status,
        "client_ref": client_ref,
        "recipients": [
            {
                "to": r[0],
                "status": r[1],
                "mm7_message_id": r[2],
                "error": r[3],
                "updated_at": iso_time(float(r[4])),
            }
            for r in recipients
        ],
    }
    if report is not None:
        data["report"] = report
    return data


def dead_letter_dict(r: Sequence[Any]) -> dict[str, Any]:
    """A dead letter from its ``DEAD_LETTER_COLUMNS`` row."""
    return {
        "event_id": r[0],
        "type": r[1],
        "stream": r[2],
        "url": r[3],
        "attempts": int(r[4]),
        "last_error": r[5],
        "created_at": iso_time(r[6]),
        "dead_at": iso_time(r[7]),
        "event": json.loads(r[8]),
    }


# -- reports ---------------------------------------------------------------------------------------


def report_decision(
    current: str,
    latest: float | None,
    mapped: str | None,
    report_at: float,
    kind: str,
    mm_status: str | None,
) -> tuple[str | None, str, str | None]:
    """What a correlated report does: ``(new state or None, outcome, recipient error)``."""
    new = next_state(current, latest, mapped, report_at)
    if new is None:
        stale = current not in HARD_FINAL and latest is not None and report_at < latest
        return None, "stale" if stale else "unchanged", None
    error = None if new in ("delivered", "read", "submitted") else f"{kind} report: {mm_status}"
    return new, "applied", error


def report_payload(
    kind: str, mm_status: str | None, extension: str | None, text: str | None, report_at: float
) -> dict[str, Any]:
    """The ``report`` object of the ``message.status`` event an applied report emits."""
    return {
        "kind": kind,
        "mm_status": mm_status,
        "mm_status_extension": extension,
        "status_text": text,
        "date": iso_time(float(report_at)),
    }


# -- inbound messages and opt-outs ----------------------------------------------------------------


def inbound_dict(r: Sequence[Any], parts: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """An inbound message from its ``INBOUND_COLUMNS`` row and ``INBOUND_PART_COLUMNS`` rows."""
    return {
        "id": r[0],
        "mmsc": r[1],
        "api_key": r[2],
        "from": r[3],
        "to": r[4],
        "recipients": json.loads(r[5]),
        "subject": r[6],
        "text": r[7],
        "linked_id": r[8],
        "transaction_id": r[9],
        "optout": r[10],
        "sent_at": iso_time(r[11]),
        "received_at": iso_time(r[12]),
        "parts": [
            {
                "index": int(p[0]),
                "content_type": p[1],
                "sha256": p[2],
                "size": int(p[3]),
                "content_id": p[4],
                "content_location": p[5],
                "charset": p[6],
                "text": p[7],
            }
            for p in parts
        ],
    }


def suppression_key(number: str) -> str:
    """Numbers are compared on digits (``+8210…`` == ``8210…``); other ids verbatim."""
    digits = "".join(ch for ch in number if ch.isdigit())
    return digits or number.strip().lower()
