"""``/v1/batches``: bulk sends (DESIGN.md section 16), thin handlers over CampaignService."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Any, Final

from aiohttp import web

from gateway.api.batch_input import scan_csv, scan_json
from gateway.api.body import form_parts, read_capped
from gateway.api.middleware import API_KEY_NAME
from gateway.api.resources import iso
from gateway.api.routes import MAX_BODY, MAX_MEDIA
from gateway.api.schemas import parse_submit
from gateway.errors import ValidationError
from gateway.outbound.campaigns import Accepted, CampaignService
from gateway.outbound.recipient_list import RecipientList
from gateway.store.campaign_records import CAMPAIGN_EVENTS, CampaignRecord
from gateway.store.records import RECIPIENT_STATES

CAMPAIGNS: web.AppKey[CampaignService] = web.AppKey("campaigns", CampaignService)
MAX_BATCH_RECIPIENTS: web.AppKey[int] = web.AppKey("max_batch_recipients", int)

#: Recipients per page of ``GET /v1/batches/{id}/recipients`` (``limit``), default and most.
PAGE_DEFAULT: Final = 100
PAGE_MAX: Final = 1000


class _Body:
    """A batch request as read: its message fields, recipients and file parts."""

    def __init__(self, max_recipients: int) -> None:
        self.fields: dict[str, object] = {}
        self.recipients = RecipientList(max_recipients)
        self.files: dict[str, tuple[str | None, bytes]] = {}


async def _read_form(request: web.Request, body: _Body, max_media: int) -> None:
    message: object = None
    csv: bytes | None = None
    async for name, content_type, data in form_parts(request, request.app[MAX_BODY]):
        if name == "message":
            message = data
        elif name == "recipients":
            csv = data
        elif name:
            body.files[name] = (content_type, data)
            if len(body.files) > max_media:
                raise ValidationError(
                    f"at most {max_media} media parts per message",
                    field="media",
                    code="too_many_media",
                )
    if not isinstance(message, bytes):
        raise ValidationError("multipart requests need a 'message' JSON field", field="message")
    body.fields = await asyncio.to_thread(scan_json, message, body.recipients)
    if csv is not None:
        if "to" in body.fields:
            raise ValidationError(
                "give the recipients either in the message's to or in the recipients part",
                field="to",
            )
        await asyncio.to_thread(scan_csv, csv, body.recipients)
        body.fields["to"] = None  # given, as the recipients part
    if "media" not in body.fields and body.files:
        body.fields["media"] = list(body.files)


async def _read_body(request: web.Request) -> _Body:
    body = _Body(request.app[MAX_BATCH_RECIPIENTS])
    media_type = request.content_type
    if media_type == "multipart/form-data":
        await _read_form(request, body, request.app[MAX_MEDIA])
    elif media_type in ("application/json", ""):
        raw = await read_capped(request, request.app[MAX_BODY])
        body.fields = await asyncio.to_thread(scan_json, raw, body.recipients)
    else:
        raise ValidationError(
            "Content-Type must be application/json or multipart/form-data",
            code="unsupported_content_type",
        )
    return body


def batch_resource(record: CampaignRecord, accepted: Accepted | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "id": record.id,
        "status": record.status,
        "events": record.events,
        "client_ref": record.client_ref,
        "recipients": record.recipients,
        "counts": record.counts,
        "progress": record.progress,
        "invalid": [{"line": i.line, "value": i.value, "error": i.error} for i in record.invalid],
        "invalid_count": record.invalid_count,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
    }
    if accepted is not None and accepted.created:
        resource["refused"] = [
            {"line": r.line, "value": r.value, "error": r.error} for r in accepted.refused
        ]
        resource["refused_count"] = accepted.refused_count
    return resource


async def post_batch(request: web.Request) -> web.Response:
    body = await _read_body(request)
    fields = body.fields
    events = fields.pop("events", "batch")
    if events not in CAMPAIGN_EVENTS:
        raise ValidationError("events must be batch or per_recipient", field="events")
    recipients = body.recipients
    if "to" not in fields:
        raise ValidationError("to (or a recipients part) is required", field="to")
    if not len(recipients):
        first = recipients.invalid[0].error if recipients.invalid else "the list is empty"
        raise ValidationError(
            f"no valid recipient ({recipients.invalid_count} invalid; first: {first})",
            field="to",
            code="no_valid_recipients",
        )
    # The content is validated as a message to the first recipient would be.
    submit = parse_submit(
        {**fields, "to": recipients.first()},
        max_recipients=1,
        file_parts=body.files,
        max_media=request.app[MAX_MEDIA],
    )
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= 200:
        raise ValidationError("Idempotency-Key must be 1-200 characters", field="Idempotency-Key")
    accepted = await request.app[CAMPAIGNS].create(
        request[API_KEY_NAME], submit, recipients, events=str(events), idempotency_key=key
    )
    response = web.json_response(
        batch_resource(accepted.record, accepted), status=202 if accepted.created else 200
    )
    response.headers["Location"] = f"/v1/batches/{accepted.record.id}"
    if not accepted.created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


async def get_batch(request: web.Request) -> web.Response:
    record = await request.app[CAMPAIGNS].get(request[API_KEY_NAME], request.match_info["id"])
    return web.json_response(batch_resource(record))


def _cursor(seq: int, idx: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([seq, idx]).encode()).decode().rstrip("=")


def _after(raw: str | None) -> tuple[int, int] | None:
    if raw is None:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        seq, idx = value
        if isinstance(seq, int) and isinstance(idx, int):
            return seq, idx
    except (ValueError, TypeError, binascii.Error):
        pass
    raise ValidationError("cursor is not one this API gave out", field="cursor", code="bad_cursor")


def _limit(raw: str | None) -> int:
    if raw is None:
        return PAGE_DEFAULT
    if not raw.isdigit() or not 1 <= int(raw) <= PAGE_MAX:
        raise ValidationError(f"limit must be 1 to {PAGE_MAX}", field="limit")
    return int(raw)


async def get_batch_recipients(request: web.Request) -> web.Response:
    status = request.query.get("status")
    if status is not None and status not in RECIPIENT_STATES:
        raise ValidationError(
            f"status must be one of {', '.join(sorted(RECIPIENT_STATES))}",
            field="status",
            code="invalid_status",
        )
    limit = _limit(request.query.get("limit"))
    after = _after(request.query.get("cursor"))
    page = await request.app[CAMPAIGNS].recipients(
        request[API_KEY_NAME], request.match_info["id"], status, after, limit + 1
    )
    more = len(page) > limit
    page = page[:limit]
    return web.json_response(
        {
            "data": [
                {
                    "to": r.to,
                    "status": r.status,
                    "message_id": r.message_id,
                    "mm7_message_id": r.mm7_message_id,
                    "error": r.error,
                    "updated_at": iso(r.updated_at),
                }
                for r in page
            ],
            "next_cursor": _cursor(page[-1].seq, page[-1].idx) if more else None,
        }
    )


async def delete_batch(request: web.Request) -> web.Response:
    record = await request.app[CAMPAIGNS].cancel(request[API_KEY_NAME], request.match_info["id"])
    return web.json_response(batch_resource(record))


def add_batch_routes(app: web.Application) -> None:
    app.router.add_post("/v1/batches", post_batch)
    app.router.add_get("/v1/batches/{id}", get_batch)
    app.router.add_get("/v1/batches/{id}/recipients", get_batch_recipients)
    app.router.add_delete("/v1/batches/{id}", delete_batch)
