# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""The MM7 listener: ``POST /mm7`` and ``POST /mm7/{mmsc}`` for MMSC-originated requests.

Checks who is calling (HTTP Basic per MMSC, optional source-address allow-list), decodes
the body with ``protocol.decode``, hands DeliveryReportReq / ReadReplyReq / DeliverReq to
their services and answers the matching ``…Rsp`` with 1000 *after* the service returned,
i.e. after the event is committed. Answers are in the peer's own schema version (the one
its namespace named, if we know it; else the MMSC's configured version).

Errors: undecodable input gets a SOAP Fault carrying ``VASPErrorRsp`` with the decoder's
status code (2007 format corrupt, 4004 validation error, 4003 unknown message); a message
we do not accept from an MMSC (a SubmitReq, say) gets 4003; a store failure gets 4006 so
the MMSC retries later. Faults use HTTP 500 as SOAP 1.1 §6.2 requires. Unknown or
missing credentials get HTTP 401 with ``WWW-Authenticate``; a refused source address, or
a bare ``/mm7`` request that fits several routes, 403 (each with a 4001 Fault body).
A body over ``max_body_bytes`` (by its Content-Length, or a chunked body growing past it)
gets HTTP 413 with a 2007 Fault before the rest is read, and the connection is closed
after aiohttp has discarded what the peer still sends; the decoder gets the same limit.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import ipaddress
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from gateway.errors import MediaError, StoreError
from gateway.media.offload import run_sized
from gateway.ops.log_context import bound_context
from protocol import (
    DEFAULT_LIMITS,
    RESPONSE_FOR,
    VERSIONS,
    BodyTooLarge,
    DecodeError,
    DeliverReq,
    DeliveryReportReq,
    EncodeError,
    Message,
    ReadReplyReq,
    VASPErrorRsp,
    decode,
    encode,
)
from protocol.versions import DEFAULT_VERSION, MM7_VERSION_VALUES

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from gateway.ops.metrics import Metrics

log = structlog.get_logger("gateway.mm7_server")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Peer:
    """What the listener needs to know about one configured MMSC."""

    name: str
    version: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    allow: tuple[IpNetwork, ...] = ()

    def address_allowed(self, remote: str | None) -> bool:
        if not self.allow:
            return True
        try:
            address = ipaddress.ip_address(remote or "")
        except ValueError:
            return False
        return any(address in network for network in self.allow)

    def credentials_match(self, username: str, password: str) -> bool:
        user_ok = hmac.compare_digest((self.username or "").encode(), username.encode())
        pass_ok = hmac.compare_digest((self.password or "").encode(), password.encode())
        return user_ok and pass_ok


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def _refusal(error: type[web.HTTPError], text: str, **headers: str) -> web.HTTPError:
    """401/403 carrying a SOAP Fault (VASPErrorRsp 4001, Improper identification), so an
    MMSC that reads faults learns why; the HTTP status says the same to one that does not."""
    _, body = _encode(
        VASPErrorRsp(
            transaction_id="gw-" + uuid.uuid4().hex,
            status_code=4001,
            status_text=f"Improper identification: {text}",
        ),
        DEFAULT_VERSION,
    )
    # A bare SOAP envelope (no attachments): UTF-8 XML text.
    return error(text=body.decode(), content_type="text/xml", headers=headers)


def _unauthorized() -> web.HTTPError:
    return _refusal(
        web.HTTPUnauthorized,
        "MMSC credentials required",
        **{"WWW-Authenticate": 'Basic realm="mm7-gateway"'},
    )


def identify(peers: dict[str, Peer], name: str | None, request: web.Request) -> Peer:
    """The MMSC behind a request, or an HTTP error (404 / 401 / 403).

    ``/mm7/{name}`` names the route; its credentials (if it has any) and allow-list must
    match. Bare ``/mm7`` is attributed by what the caller proves: the routes whose
    credentials it presented (none presented: the routes that expect none), narrowed to
    those whose allow-list admits its address. Exactly one must remain; several are
    refused (403) rather than guessed, because a callback changes only its own route's
    messages.
    """
    credentials = basic_credentials(request.headers.get("Authorization"))
    if name is not None:
        peer = peers.get(name)
        if peer is None:
            raise web.HTTPNotFound(text="no such MMSC")
        if peer.username is not None and (
            credentials is None or not peer.credentials_match(*credentials)
        ):
            log.warning("MM7 request with unknown credentials", mmsc=name)
            raise _unauthorized()
        candidates = [peer]
    elif credentials is not None:
        candidates = [
            p
            for p in peers.values()
            if p.username is not None and p.credentials_match(*credentials)
        ]
    else:
        candidates = [p for p in peers.values() if p.username is None]
    if not candidates:
        log.warning("MM7 request with unknown credentials", presented=credentials is not None)
        raise _unauthorized()
    allowed = [p for p in candidates if p.address_allowed(request.remote)]
    if not allowed:
        log.warning("MM7 request from a refused address", mmsc=[p.name for p in candidates])
        raise _refusal(web.HTTPForbidden, "source address not allowed")
    if len(allowed) > 1:
        log.warning("MM7 request matches several routes", mmsc=[p.name for p in allowed])
        raise _refusal(
            web.HTTPForbidden,
            "the request fits several routes; post to /mm7/{route} or use per-route credentials",
        )
    return allowed[0]


def _response_version(msg: Message, peer: Peer) -> str:
    return msg.version if msg.version in VERSIONS else peer.version


def _encode(message: Message, version: str) -> tuple[str, bytes]:
    try:
        return encode(message, version)
    except EncodeError:
        # E.g. a TransactionID that is no xs:NMTOKEN under REL-5-MM7-1-0: answer in a
        # schema that can carry it rather than not at all.
        return encode(message, DEFAULT_VERSION)


def soap_response(message: Message, version: str, status: int = 200) -> web.Response:
    content_type, body = _encode(message, version)
    return web.Response(body=body, status=status, headers={"Content-Type": content_type})


def fault(version: str, transaction_id: str | None, code: int, text: str) -> web.Response:
    error = VASPErrorRsp(
        transaction_id=transaction_id or "gw-" + uuid.uuid4().hex,
        status_code=code,
        status_text=text[:200],
    )
    return soap_response(error, version, status=500)


def missing_fields(msg: Message) -> list[str]:
    """The mandatory elements (MM7 names) a callback lacks for us to act on it."""
    missing: list[str] = []
    if isinstance(msg, DeliveryReportReq | ReadReplyReq):
        if not msg.message_id:
            missing.append("MessageID")
        if not msg.mm_status:
            missing.append("MMStatus")
        if msg.recipient is None and msg.sender is None:
            missing.append("Recipient")  # one MMSC swaps Sender/Recipient: either will do
    # A DeliverReq without Sender is accepted (a Nokia MMSC sends them): it is stored with
    # no sender; it cannot opt out or be answered, but refusing it would lose the message.
    return missing


@dataclass(frozen=True, slots=True)
class Handlers:
    """The services each accepted MM7 request type goes to (all durable on return)."""

    delivery_report: Callable[[str, DeliveryReportReq], Awaitable[object]]
    read_reply: Callable[[str, ReadReplyReq], Awaitable[object]]
    deliver: Callable[[str, DeliverReq], Awaitable[object]]


async def read_capped(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed ``limit`` bytes.

    Chunks are kept in a list and joined once: growing one buffer to the limit and then
    dropping it leaves the allocator holding that much for every refused request.
    """
    length = request.content_length
    if length is not None and length > limit:
        return None  # refused from the header: nothing is read
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.content.iter_any():
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class Mm7Listener:
    def __init__(
        self,
        peers: dict[str, Peer],
        handlers: Handlers,
        metrics: Metrics,
        *,
        max_body_bytes: int = DEFAULT_LIMITS.max_body_bytes,
    ) -> None:
        self.peers = peers
        self.handlers = handlers
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.limits = dataclasses.replace(DEFAULT_LIMITS, max_body_bytes=max_body_bytes)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/mm7", self.handle)
        app.router.add_post("/mm7/{mmsc}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        peer = identify(self.peers, request.match_info.get("mmsc"), request)
        body = await read_capped(request, self.max_body_bytes)
        with bound_context(mmsc=peer.name):
            if body is None:
                log.warning("MM7 request body too large", limit=self.max_body_bytes)
                text = f"message body exceeds {self.max_body_bytes} bytes"
                response = fault(peer.version, None, BodyTooLarge.status_code, text)
                response.set_status(413)
                # Keep-alive is off: the rest of the body is discarded, then we close.
                response.force_close()
                return response
            try:
                content_type = request.headers.get("Content-Type")
                limits = self.limits
                # A DeliverReq with media can be megabytes: decoded off the event loop.
                msg = await run_sized(len(body), lambda: decode(body, content_type, limits=limits))
            except DecodeError as exc:
                log.warning("undecodable MM7 request", error=str(exc), status=exc.status_code)
                return fault(peer.version, None, exc.status_code, str(exc))
            self.metrics.leniencies(peer.name, msg.leniencies)
            # Reports and read replies name the MessageID we got in our SubmitRsp.
            with bound_context(
                transaction_id=msg.transaction_id,
                mm7_message_id=getattr(msg, "message_id", None),
            ):
                return await self._dispatch(peer, msg)

    async def _dispatch(self, peer: Peer, msg: Message) -> web.Response:
        version = _response_version(msg, peer)
        missing = missing_fields(msg)
        if missing:
            # Tolerant parsing stops here: without these we could neither correlate nor
            # store the callback, and answering 1000 would make the MMSC drop it for good.
            log.warning("MM7 callback without mandatory elements", missing=missing)
            return fault(
                version,
                msg.transaction_id,
                4004,
                f"validation error: {type(msg).__name__} has no {' or '.join(missing)}",
            )
        try:
            if isinstance(msg, DeliveryReportReq):
                await self.handlers.delivery_report(peer.name, msg)
            elif isinstance(msg, ReadReplyReq):
                await self.handlers.read_reply(peer.name, msg)
            elif isinstance(msg, DeliverReq):
                await self.handlers.deliver(peer.name, msg)
            else:
                log.warning("unsupported MM7 operation", operation=type(msg).__name__)
                return fault(
                    version,
                    msg.transaction_id,
                    4003,
                    f"{type(msg).__name__} is not accepted on the VASP side",
                )
        except (StoreError, MediaError) as exc:
            # No traceback: its locals would put the message (numbers, media) in the log.
            log.error("cannot store an MM7 callback", error=str(exc))  # noqa: TRY400
            return fault(version, msg.transaction_id, 4006, "service temporarily unavailable")
        allowed = MM7_VERSION_VALUES.get(version, ())
        rsp = RESPONSE_FOR[type(msg)](
            transaction_id=msg.transaction_id or "gw-" + uuid.uuid4().hex,
            mm7_version=msg.mm7_version if msg.mm7_version in allowed else None,
            status_code=1000,
        )
        return soap_response(rsp, version)
