"""REST route table and thin handlers: parse → service → render."""

from __future__ import annotations

import json
from importlib import resources

from aiohttp import web

from gateway.api.body import form_parts, read_capped
from gateway.api.middleware import API_KEY_NAME
from gateway.api.resources import message_resource
from gateway.api.schemas import parse_replace, parse_submit
from gateway.errors import ValidationError
from gateway.media.offload import sha256_hex
from gateway.outbound.control import MessageControl
from gateway.outbound.submission import SubmissionService, request_fingerprint
from gateway.store import MessageRecord

SUBMISSIONS: web.AppKey[SubmissionService] = web.AppKey("submissions", SubmissionService)
CONTROL: web.AppKey[MessageControl] = web.AppKey("control", MessageControl)
MAX_RECIPIENTS: web.AppKey[int] = web.AppKey("max_recipients", int)
MAX_MEDIA: web.AppKey[int] = web.AppKey("max_media", int)
MAX_BODY: web.AppKey[int] = web.AppKey("max_body", int)


async def _read_json(request: web.Request) -> object:
    raw = await read_capped(request, request.app[MAX_BODY])
    try:
        return json.loads(raw)
    except ValueError as exc:
        # JSONDecodeError, UnicodeDecodeError, and an integer past Python's digit limit.
        raise ValidationError(f"malformed JSON: {exc}", code="malformed_json") from None
    except RecursionError:
        # json's C scanner recurses per nesting level; no real message nests this deep.
        raise ValidationError("JSON nested too deeply", code="malformed_json") from None


async def _read_form(request: web.Request) -> tuple[object, dict[str, tuple[str | None, bytes]]]:
    message: object = None
    files: dict[str, tuple[str | None, bytes]] = {}
    async for name, content_type, data in form_parts(request, request.app[MAX_BODY]):
        if name == "message":
            try:
                message = json.loads(data)
            except ValueError as exc:
                raise ValidationError(
                    f"malformed JSON in the message field: {exc}", field="message"
                ) from None
            except RecursionError:
                raise ValidationError(
                    "JSON in the message field is nested too deeply", field="message"
                ) from None
        elif name:
            files[name] = (content_type, data)
            if len(files) > request.app[MAX_MEDIA]:
                # Stop reading: thousands of tiny parts cost more than their bytes suggest.
                raise ValidationError(
                    f"at most {request.app[MAX_MEDIA]} media parts per message",
                    field="media",
                    code="too_many_media",
                )
    if message is None:
        raise ValidationError("multipart requests need a 'message' JSON field", field="message")
    if isinstance(message, dict) and "media" not in message and files:
        message = {**message, "media": list(files)}
    return message, files


async def _read_body(request: web.Request) -> tuple[object, dict[str, tuple[str | None, bytes]]]:
    """The JSON body (or the ``message`` field of a form) and any file parts."""
    media_type = request.content_type
    if media_type == "multipart/form-data":
        return await _read_form(request)
    if media_type in ("application/json", ""):
        return await _read_json(request), {}
    raise ValidationError(
        "Content-Type must be application/json or multipart/form-data",
        code="unsupported_content_type",
    )


async def post_message(request: web.Request) -> web.Response:
    service = request.app[SUBMISSIONS]
    body, files = await _read_body(request)
    submit = parse_submit(
        body,
        max_recipients=request.app[MAX_RECIPIENTS],
        file_parts=files,
        max_media=request.app[MAX_MEDIA],
    )
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 200:
        raise ValidationError("Idempotency-Key must be 1-200 characters", field="Idempotency-Key")
    # Only needed to detect an Idempotency-Key reused for a different request.
    fingerprint = (
        request_fingerprint(body, [await sha256_hex(data) for _, data in files.values()])
        if idempotency_key is not None
        else None
    )
    if idempotency_key is not None:
        # A replay is answered from the store before any other work: not refused because
        # the queue filled up or the recipient opted out since, no media fetched again.
        replay = await service.replay(request[API_KEY_NAME], idempotency_key, fingerprint)
        if replay is not None:
            return _message_response(replay, created=False)
    record, created = await service.submit(
        request[API_KEY_NAME],
        submit,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
    )
    return _message_response(record, created=created)


def _message_response(record: MessageRecord, *, created: bool) -> web.Response:
    response = web.json_response(message_resource(record), status=202 if created else 200)
    response.headers["Location"] = f"/v1/messages/{record.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


async def get_message(request: web.Request) -> web.Response:
    record = await request.app[SUBMISSIONS].get(request[API_KEY_NAME], request.match_info["id"])
    return web.json_response(message_resource(record))


async def put_message(request: web.Request) -> web.Response:
    """Replace a message's content (text, subject, media)."""
    service = request.app[SUBMISSIONS]
    record = await service.get(request[API_KEY_NAME], request.match_info["id"])
    body, files = await _read_body(request)
    replacement = parse_replace(body, file_parts=files, max_media=request.app[MAX_MEDIA])
    updated = await request.app[CONTROL].replace(record, replacement)
    return web.json_response(message_resource(updated))


async def delete_message(request: web.Request) -> web.Response:
    service = request.app[SUBMISSIONS]
    record = await service.get(request[API_KEY_NAME], request.match_info["id"])
    updated = await request.app[CONTROL].cancel(record)
    return web.json_response(message_resource(updated))


#: Served without an API key (the auth middleware lets this path through).
OPENAPI_PATH = "/v1/openapi.json"


def openapi_document() -> bytes:
    """The OpenAPI 3.1 description of this API, shipped as package data."""
    return resources.files("gateway").joinpath("assets/openapi.json").read_bytes()


def add_routes(app: web.Application) -> None:
    document = openapi_document()

    async def get_openapi(_: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    app.router.add_get(OPENAPI_PATH, get_openapi)
    app.router.add_post("/v1/messages", post_message)
    app.router.add_get("/v1/messages/{id}", get_message)
    app.router.add_put("/v1/messages/{id}", put_message)
    app.router.add_delete("/v1/messages/{id}", delete_message)
