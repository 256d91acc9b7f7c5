"""``POST /mm7``: the VASP-facing MM7 endpoint of the mock MMSC.

Order of work for each request: read the body, check HTTP Basic credentials (401), decode
(a ``DecodeError`` is answered with a Fault carrying its ``status_code``), validate (an
operation missing a mandatory element gets 4004, as from a real MMSC), walk the
scenario chain, then act: accept a ``SubmitReq`` with a fresh ``MessageID`` and schedule
its delivery reports, or cancel/replace a remembered one (2005 when unknown). Answers
use the configured schema version, else the request's when it is a known one, else the
default; error statuses are a SOAP Fault with ``RSErrorRsp`` and HTTP 500 (SOAP 1.1),
or with ``fault_style = "rsp"`` HTTP 200 and the matching ``…Rsp`` holding the status.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hmac
import time
from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from gateway.mock_mmsc.recorder import http_bytes
from gateway.mock_mmsc.scenarios import (
    Answer,
    Delay,
    Drop,
    DropConnection,
    HttpError,
    HttpError500,
    Latency,
    RequestView,
)
from gateway.mock_mmsc.state import STATE, MockState, Submission
from gateway.mock_mmsc.stats import DROPPED, HTTP_500, UNAUTHORIZED
from protocol import (
    DEFAULT_VERSION,
    RESPONSE_FOR,
    VERSIONS,
    Address,
    CancelReq,
    DecodeError,
    DeliveryReportReq,
    EncodeError,
    ExtendedCancelReq,
    ExtendedReplaceReq,
    ExtendedReplaceRsp,
    Extension,
    Limits,
    Message,
    Recipients,
    ReplaceReq,
    RSErrorRsp,
    SenderIdentification,
    SubmitReq,
    SubmitRsp,
    TooLarge,
    decode,
    encode,
)
from protocol.layouts import LAYOUTS
from protocol.versions import closest_known, namespace_for

#: Schema versions whose SubmitRsp has no MessageID element; we add it as an extension,
#: as the MMSCs of that era did, or the VASP could never correlate delivery reports.
_NO_SUBMIT_MESSAGE_ID = frozenset({"REL-5-MM7-1-0"})
_DECODE_LIMITS = Limits()

#: The element each operation cannot be acted on without. Schema-mandatory in every
#: version, except ReplaceID, which REL-6-MM7-1-4 leaves optional although it is the
#: only thing naming the message to replace.
_OPERAND: Final[dict[type[Message], str]] = {
    SubmitReq: "Recipients",
    CancelReq: "MessageID",
    ReplaceReq: "MessageID",
    ExtendedCancelReq: "CancelID",
    ExtendedReplaceReq: "ReplaceID",
}


async def handle_mm7(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    started = time.perf_counter()
    body = await request.read()
    exchange = 0
    if state.recorder is not None:
        exchange = state.recorder.next_exchange()
        version = f"HTTP/{request.version.major}.{request.version.minor}"
        start = f"{request.method} {request.path_qs} {version}"
        await state.recorder.write(
            exchange, "in", "request", http_bytes(start, request.headers.items(), body)
        )
    response = await _respond(state, request, body)
    state.metrics.request_seconds.observe(time.perf_counter() - started)
    if response is None:  # dropped: the client sees the connection close, no answer
        if request.transport is not None:
            request.transport.close()
        return web.Response()
    if state.recorder is not None:
        await state.recorder.write(exchange, "in", "response", _raw_response(response))
    return response


#: Scenarios that act before a request is read: the only ones a bodiless probe meets.
_TRANSPORT_FAULTS: Final = (Latency, DropConnection, HttpError500)


async def handle_probe(request: web.Request) -> web.StreamResponse:
    """``GET``/``HEAD /mm7`` (a VASP checking the link): the transport faults apply as to
    any request, otherwise 405 with ``Allow: POST``, as from a real SOAP endpoint."""
    state = request.app[STATE]
    view = RequestView("probe", 0, 0)
    for scenario in state.chain:
        if not isinstance(scenario, _TRANSPORT_FAULTS):
            continue
        action = scenario.apply(view, state.rng)
        if isinstance(action, Delay):
            await asyncio.sleep(action.seconds)
        elif isinstance(action, Drop):
            _count(state, view.message_type, DROPPED)
            if request.transport is not None:
                request.transport.close()
            return web.Response()
        elif isinstance(action, HttpError):
            _count(state, view.message_type, HTTP_500)
            return web.Response(status=action.http_status, text="Internal Server Error\n")
    _count(state, view.message_type, "405")
    return web.Response(status=405, headers={"Allow": "POST"})


def _raw_response(response: web.Response) -> bytes:
    body = response.body if isinstance(response.body, bytes) else b""
    headers = [*response.headers.items(), ("Content-Length", str(len(body)))]
    return http_bytes(f"HTTP/1.1 {response.status} {response.reason}", headers, body)


async def _respond(state: MockState, request: web.Request, body: bytes) -> web.Response | None:
    settings = state.settings
    if settings.username is not None and not _authorized(
        request.headers.get("Authorization"), settings.username, settings.password or ""
    ):
        _count(state, "unknown", UNAUTHORIZED)
        return web.Response(
            status=401,
            text="authentication required\n",
            headers={"WWW-Authenticate": 'Basic realm="mm7"'},
        )
    limit = max(_DECODE_LIMITS.max_body_bytes, settings.max_message_bytes or 0)
    try:
        message = decode(
            body,
            request.headers.get("Content-Type"),
            limits=dataclasses.replace(_DECODE_LIMITS, max_body_bytes=limit),
        )
    except TooLarge as exc:
        code = 2004 if settings.max_message_bytes is not None else exc.status_code
        return _error(state, None, code, f"message refused: {exc}", "unknown")
    except DecodeError as exc:
        return _error(state, None, exc.status_code, f"cannot decode request: {exc}", "unknown")
    missing = missing_elements(message)
    if missing:
        kind = type(message).TAG
        text = f"validation error: {kind} lacks mandatory {', '.join(missing)}"
        return _error(state, message, 4004, text, kind)
    view = RequestView(
        type(message).TAG,
        len(body),
        len(message.recipients) if isinstance(message, SubmitReq) else 0,
    )
    for scenario in state.chain:
        action = scenario.apply(view, state.rng)
        if action is None:
            continue
        if isinstance(action, Delay):
            await asyncio.sleep(action.seconds)
            continue
        if isinstance(action, Drop):
            _count(state, view.message_type, DROPPED)
            return None
        if isinstance(action, HttpError):
            _count(state, view.message_type, HTTP_500)
            return web.Response(status=action.http_status, text="Internal Server Error\n")
        return _act(state, message, action)
    raise AssertionError("the scenario chain ends with Happy")  # pragma: no cover


def missing_elements(message: Message) -> tuple[str, ...]:
    """Mandatory elements an operation request lacks (or holds empty); () if complete.

    Only the operations the mock acts on are checked (anything else gets 4003 later).
    None of the shared SubmitReq samples that INDEX.json says a tolerant MMSC should
    accept lacks a mandatory element, so no vendor case needs tolerating here (the one
    accepted sample that does, a DeliverReq without Sender, is no MMSC operation).
    """
    cls = type(message)
    operand = _OPERAND.get(cls)
    if operand is None:
        return ()
    reported = "missing_mandatory" in message.leniencies
    if not reported and not _is_empty(getattr(message, cls.ELEMENTS[operand][0])):
        return ()  # the fast path: every well-formed request ends here
    version = closest_known(message.version)
    layout = LAYOUTS[version].get(cls.TAG) or LAYOUTS[DEFAULT_VERSION][cls.TAG]
    required = [name for name, needed in layout if needed]
    if operand not in required:
        required.append(operand)
    missing = [n for n in required if _is_empty(getattr(message, cls.ELEMENTS[n][0]))]
    if reported and not missing:
        # The decoder saw an element missing that leaves no trace in the fields: an
        # absent SenderIdentification reads back as an empty one.
        missing = [
            n
            for n in required
            if getattr(message, cls.ELEMENTS[n][0], None) == SenderIdentification()
        ] or ["elements"]
    return tuple(missing)


def _is_empty(value: object) -> bool:
    if isinstance(value, Recipients):
        return not value.all()
    return value is None or value == ""


def _authorized(header: str | None, username: str, password: str) -> bool:
    if header is None or header[:6].lower() != "basic ":
        return False
    expected = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return hmac.compare_digest(header[6:].strip().encode(), expected.encode())


def _answer_version(state: MockState, message: Message | None) -> str:
    if state.settings.version is not None:
        return state.settings.version
    if message is not None and message.version in VERSIONS:
        return message.version
    return DEFAULT_VERSION


def _act(state: MockState, message: Message, action: Answer) -> web.Response:
    kind = type(message).TAG
    if action.status_code != 1000:
        return _error(state, message, action.status_code, action.status_text, kind)
    if isinstance(message, SubmitReq):
        return _accept_submit(state, message)
    if isinstance(message, CancelReq | ExtendedCancelReq):
        target = message.message_id if isinstance(message, CancelReq) else message.cancel_id
        known = state.submissions.get(target or "")
        if known is None:
            return _error(state, message, 2005, f"unknown MessageID {target!r}", kind)
        known.canceled = True
        return _ok(state, message, RESPONSE_FOR[type(message)](status_code=1000))
    if isinstance(message, ReplaceReq | ExtendedReplaceReq):
        target = message.message_id if isinstance(message, ReplaceReq) else message.replace_id
        known = state.submissions.get(target or "")
        if known is None or known.canceled:
            return _error(state, message, 2005, f"unknown MessageID {target!r}", kind)
        if isinstance(message, ReplaceReq):
            return _ok(state, message, RESPONSE_FOR[ReplaceReq](status_code=1000))
        replacement = Submission(state.new_id("m"), known.recipients)
        state.remember(replacement)
        known.canceled = True
        rsp = ExtendedReplaceRsp(status_code=1000, message_id=replacement.message_id)
        return _ok(state, message, rsp)
    return _error(state, message, 4003, f"{kind} is not an operation of an MMS Relay/Server", kind)


def _accept_submit(state: MockState, message: SubmitReq) -> web.Response:
    message_id = state.new_id("m")
    recipients = message.recipients.all()
    submission = Submission(message_id, tuple(a.value for a in recipients))
    state.remember(submission)
    version = _answer_version(state, message)
    settings = state.settings
    if message.delivery_report and settings.vasp_url and state.callbacks is not None:
        names = [name for name, _ in settings.dr_outcomes]
        weights = [weight for _, weight in settings.dr_outcomes]
        sender = message.sender_identification.sender_address or Address.short_code("0")
        reports: list[Message] = [
            DeliveryReportReq(
                transaction_id=state.new_id("dr"),
                mms_relay_server_id="mock-mmsc",
                message_id=message_id,
                recipient=recipient,
                sender=sender,
                date=datetime.now(UTC).replace(microsecond=0),
                mm_status=state.rng.choices(names, weights)[0],
            )
            for recipient in recipients
        ]
        state.callbacks.schedule(
            reports,
            version,
            settings.dr_delay,
            lambda: not submission.canceled,
            message_id=message_id,
        )
    extensions: tuple[Extension, ...] = ()
    rsp_id: str | None = message_id
    if settings.omit_message_id:
        rsp_id = None
    elif version in _NO_SUBMIT_MESSAGE_ID:
        extensions = (Extension(name="MessageID", namespace=namespace_for(version), text=rsp_id),)
        rsp_id = None
    rsp = SubmitRsp(status_code=1000, message_id=rsp_id, extensions=extensions)
    _count(
        state, "SubmitReq", "1000", message_id=message_id, recipients=list(submission.recipients)
    )
    return _encoded(state, message, rsp, 200)


def _ok(state: MockState, message: Message, rsp: Message) -> web.Response:
    _count(state, type(message).TAG, "1000")
    return _encoded(state, message, rsp, 200)


def _error(
    state: MockState, message: Message | None, code: int, text: str | None, kind: str
) -> web.Response:
    _count(state, kind, str(code), status_text=text)
    if state.settings.fault_style == "rsp" and message is not None:
        rsp_class = RESPONSE_FOR.get(type(message))
        if rsp_class is not None:
            fields = {"status_code": code, "status_text": text}
            if rsp_class is SubmitRsp:
                fields["message_id"] = ""
            try:
                return _encoded(state, message, rsp_class(**fields), 200)  # type: ignore[arg-type]
            except EncodeError:
                pass  # this version's …Rsp cannot carry it (e.g. text): fall back to a Fault
    return _encoded(state, message, RSErrorRsp(status_code=code, status_text=text), 500)


def _encoded(state: MockState, request: Message | None, rsp: Message, status: int) -> web.Response:
    transaction_id = (request.transaction_id if request else None) or state.new_id("tx")
    rsp = dataclasses.replace(rsp, transaction_id=transaction_id)
    version = _answer_version(state, request)
    try:
        content_type, body = encode(rsp, version)
    except EncodeError:
        if request is None or request.transaction_id is None:
            raise
        # The request's TransactionID may not fit an old schema (xs:NMTOKEN there): answer
        # under one of ours rather than not at all.
        rsp = dataclasses.replace(rsp, transaction_id=state.new_id("tx"))
        content_type, body = encode(rsp, version)
    return web.Response(status=status, body=body, headers={"Content-Type": content_type})


def _count(state: MockState, kind: str, outcome: str, **details: object) -> None:
    state.metrics.requests.labels(kind, outcome).inc()
    state.stats.request(kind, outcome, **details)
