"""``/admin/*``: the JSON control surface tests and users drive the mock MMSC with.

- ``POST /admin/deliver`` sends a ``DeliverReq`` (an inbound MMS) to the VASP now and
  returns the VASP's answer (several parts travel in one ``multipart/mixed`` content part
  unless ``container`` says ``multipart/related`` or ``none``); ``POST /admin/read-reply``
  does the same for ``ReadReplyReq``.
- ``GET /admin/stats`` and ``POST /admin/reset`` read and clear the counters.
- ``GET``/``POST /admin/config`` read and change the fault settings while running.

Bad input is answered ``400 {"error": "..."}``; a push without ``vasp_url`` configured is
``409``. A push the VASP refused is still ``200``: the JSON says what the VASP answered.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import mimetypes
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from gateway.mock_mmsc.callbacks import PushResult
from gateway.mock_mmsc.config import MockConfigError
from gateway.mock_mmsc.state import STATE, MockState
from protocol import (
    DEFAULT_VERSION,
    VERSIONS,
    Address,
    Attachment,
    DeliverReq,
    EncodeError,
    Message,
    ReadReplyReq,
    Recipients,
)
from protocol.layouts import LAYOUTS

#: Content types of fixture files by suffix; MMS clients know vCards as text/x-vCard.
_FIXTURE_TYPES: Final = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".vcf": "text/x-vCard",
    ".txt": "text/plain; charset=utf-8",
    ".amr": "audio/amr",
}
_CONTAINERS: Final = ("multipart/related", "multipart/mixed")
#: ``"container": "none"``: the parts as sibling attachments, Content naming the first
#: only (what the mock used to send; kept to test a VASP's tolerance of it).
_NO_CONTAINER: Final = "none"
_MAX_SHORT_CODE_DIGITS: Final = 8


class AdminInputError(ValueError):
    """The admin request is invalid; the text goes back to the caller."""


def routes() -> list[web.RouteDef]:
    return [
        web.post("/admin/deliver", deliver),
        web.post("/admin/read-reply", read_reply),
        web.get("/admin/stats", stats),
        web.post("/admin/reset", reset),
        web.get("/admin/config", show_config),
        web.post("/admin/config", change_config),
    ]


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise AdminInputError("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise AdminInputError("body must be a JSON object")
    return data


def _bad(message: str, status: int = 400, **extra: object) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def parse_address(value: object, field: str) -> Address:
    """``a@b`` → RFC 2822 address, up to 8 bare digits → short code, else a number."""
    if not isinstance(value, str) or not value.strip():
        raise AdminInputError(f"{field}: expected a non-empty string")
    text = value.strip()
    if "@" in text:
        return Address.rfc2822(text)
    if text.isdigit() and len(text) <= _MAX_SHORT_CODE_DIGITS:
        return Address.short_code(text)
    return Address.number(text)


def _version(state: MockState, data: dict[str, Any]) -> str:
    version = data.get("version") or state.settings.version or DEFAULT_VERSION
    if version not in VERSIONS:
        raise AdminInputError(f"version: unknown MM7 version {version!r}")
    return str(version)


def _media_part(state: MockState, item: object, index: int) -> Attachment:
    field = f"media[{index}]"
    if not isinstance(item, dict):
        raise AdminInputError(f"{field}: expected an object")
    content_id = f"media{index}"
    if "fixture" in item:
        name = item["fixture"]
        if not isinstance(name, str) or Path(name).name != name or name.startswith("."):
            raise AdminInputError(f"{field}.fixture: expected a plain file name")
        path = state.settings.media_dir / name
        try:
            data = path.read_bytes()
        except OSError:
            raise AdminInputError(
                f"{field}.fixture: no fixture {name!r} in the media dir"
            ) from None
        guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
        content_type = _FIXTURE_TYPES.get(path.suffix.lower(), guessed)
        return Attachment(
            content_type=content_type, data=data, content_id=content_id, content_location=name
        )
    given_type, encoded = item.get("content_type"), item.get("data")
    if not isinstance(given_type, str) or not isinstance(encoded, str):
        raise AdminInputError(f"{field}: expected content_type and base64 data, or fixture")
    try:
        data = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise AdminInputError(f"{field}.data: not valid base64") from None
    return Attachment(content_type=given_type, data=data, content_id=content_id)


def _attachments(state: MockState, data: dict[str, Any]) -> tuple[Attachment, ...]:
    parts: list[Attachment] = []
    text = data.get("text")
    if text is not None:
        if not isinstance(text, str):
            raise AdminInputError("text: expected a string")
        parts.append(
            Attachment(
                content_type="text/plain; charset=utf-8",
                data=text.encode(),
                content_id="text",
                content_location="text.txt",
            )
        )
    media = data.get("media", [])
    if not isinstance(media, list):
        raise AdminInputError("media: expected a list")
    parts.extend(_media_part(state, item, i) for i, item in enumerate(media))
    # Real MMSCs send several parts as one multipart content part that Content names, so
    # a spec-following VASP sees them all; one part goes as itself.
    container = data.get("container", "multipart/mixed")
    if container == _NO_CONTAINER or len(parts) < 2:
        return tuple(parts)
    if container not in _CONTAINERS:
        choices = ", ".join((*_CONTAINERS, _NO_CONTAINER))
        raise AdminInputError(f"container: expected one of {choices}")
    return (Attachment(content_type=container, content_id="mms-content", parts=tuple(parts)),)


def _reply_charging_id(state: MockState, data: dict[str, Any], version: str) -> str | None:
    """REL-5-MM7-1-0 and 1-1 require ReplyChargingID (an NMTOKEN) in every DeliverReq;
    MMSCs of that release filled it with their own ID of the MM when no reply charging
    applied, which a VASP can only ever quote back. Later schemas made it optional."""
    given = data.get("reply_charging_id")
    if given is not None:
        if not isinstance(given, str) or not given:
            raise AdminInputError("reply_charging_id: expected a non-empty string")
        return given
    if ("ReplyChargingID", True) in LAYOUTS[version]["DeliverReq"]:
        return state.new_id("mm")
    return None


def build_deliver(state: MockState, data: dict[str, Any]) -> DeliverReq:
    to = data.get("to")
    targets = to if isinstance(to, list) else [to]
    subject = data.get("subject")
    if subject is not None and not isinstance(subject, str):
        raise AdminInputError("subject: expected a string")
    return DeliverReq(
        transaction_id=state.new_id("dl"),
        mms_relay_server_id="mock-mmsc",
        sender=parse_address(data.get("from"), "from"),
        recipients=Recipients(to=tuple(parse_address(t, "to") for t in targets)),
        time_stamp=datetime.now(UTC).replace(microsecond=0),
        subject=subject,
        linked_id=data.get("linked_id"),
        reply_charging_id=_reply_charging_id(state, data, _version(state, data)),
        attachments=_attachments(state, data),
    )


def build_read_reply(state: MockState, data: dict[str, Any]) -> ReadReplyReq:
    message_id = data.get("message_id")
    if not isinstance(message_id, str) or not message_id:
        raise AdminInputError("message_id: expected a non-empty string")
    status = data.get("status", "Read")
    if not isinstance(status, str):
        raise AdminInputError("status: expected a string such as Read, Deleted, Indeterminate")
    return ReadReplyReq(
        transaction_id=state.new_id("rr"),
        mms_relay_server_id="mock-mmsc",
        message_id=message_id,
        sender=parse_address(data.get("from"), "from"),
        recipient=parse_address(data.get("to"), "to"),
        time_stamp=datetime.now(UTC).replace(microsecond=0),
        mm_status=status,
        status_text=data.get("status_text"),
    )


async def _push(request: web.Request, build: Any) -> web.Response:
    state = request.app[STATE]
    try:
        data = await _json_object(request)
        version = _version(state, data)
        message: Message = build(state, data)
    except AdminInputError as exc:
        return _bad(str(exc))
    if state.settings.vasp_url is None or state.callbacks is None:
        return _bad("no vasp_url configured", status=409)
    try:
        if data.get("retry"):
            result = await state.callbacks.send(message, version)
        else:
            result = await state.callbacks.send_once(message, version)
            _count_once(state, message, result)
    except EncodeError as exc:
        return _bad(f"cannot encode {type(message).TAG} in {version}: {exc}")
    return web.json_response(
        {"transaction_id": message.transaction_id, "version": version, **result.as_json()}
    )


def _count_once(state: MockState, message: Message, result: PushResult) -> None:
    outcome = "delivered" if result.delivered else "failed"
    state.metrics.callbacks.labels(type(message).TAG, outcome).inc()
    state.stats.callback(type(message).TAG, outcome, transaction_id=message.transaction_id)


async def deliver(request: web.Request) -> web.Response:
    return await _push(request, build_deliver)


async def read_reply(request: web.Request) -> web.Response:
    return await _push(request, build_read_reply)


async def stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    pending = state.callbacks.pending if state.callbacks is not None else 0
    snapshot = state.stats.snapshot(pending)
    snapshot["scenarios"] = [scenario.name for scenario in state.chain]
    return web.json_response(snapshot)


async def reset(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.callbacks is not None:
        await state.callbacks.cancel_all()
    state.reset()
    return web.json_response({"ok": True})


def settings_view(state: MockState) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for item in dataclasses.fields(state.settings):
        if "password" in item.name:
            continue
        value = getattr(state.settings, item.name)
        if isinstance(value, Path):
            value = str(value)
        elif item.name in ("dr_outcomes", "fail_rate"):
            value = {str(k): v for k, v in value}
        view[item.name] = value
    return view


async def show_config(request: web.Request) -> web.Response:
    return web.json_response(settings_view(request.app[STATE]))


async def change_config(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        data = await _json_object(request)
        state.reconfigure(data)
    except AdminInputError as exc:
        return _bad(str(exc))
    except MockConfigError as exc:
        return _bad(str(exc), key=exc.key)
    return web.json_response(settings_view(state))
