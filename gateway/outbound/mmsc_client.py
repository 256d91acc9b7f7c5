"""HTTP transport to one MMSC: a kept-alive aiohttp session, Basic auth, TLS, timeouts.

``send`` never raises for peer or network trouble: it returns a ``SendResult`` that the
dispatcher classifies. Bodies are passed as bytes so aiohttp always sends a
``Content-Length`` (several MMSCs reject chunked requests).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from dataclasses import dataclass
from typing import Literal

import aiohttp

from gateway.media.offload import run_sized
from protocol import (
    Attachment,
    DecodeError,
    EnvelopeTemplates,
    Message,
    ResponseShapes,
    encode,
)

ResultKind = Literal["response", "http_error", "network_error", "timeout"]


@dataclass(frozen=True, slots=True)
class SendResult:
    kind: ResultKind
    seconds: float
    message: Message | None = None
    http_status: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ClientSettings:
    url: str
    version: str
    username: str | None = None
    password: str | None = None
    timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 5.0
    max_connections: int = 8
    transfer_encoding: str = "binary"
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_verify: bool = True


def payload_bytes(attachments: tuple[Attachment, ...]) -> int:
    """Bytes of attachment data, nested multiparts included (what encoding costs)."""
    return sum(len(a.data) + payload_bytes(a.parts) for a in attachments)


def make_ssl_context(settings: ClientSettings) -> ssl.SSLContext | bool:
    if not settings.url.startswith("https:"):
        return True
    context = ssl.create_default_context(cafile=settings.tls_ca_file)
    if not settings.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings.tls_cert_file:
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    return context


class MmscClient:
    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        # A route's SubmitReqs differ in a few values: their envelopes come from templates.
        self._templates = EnvelopeTemplates()
        # ... and its answers differ in two values: decoded once per shape.
        self._responses = ResponseShapes()

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=max(1, self.settings.max_connections),
            ssl=make_ssl_context(self.settings),
            keepalive_timeout=60,
        )
        headers = {"SOAPAction": '""'}
        if self.settings.username is not None:
            # Built by hand: aiohttp.BasicAuth is deprecated in recent aiohttp releases.
            token = f"{self.settings.username}:{self.settings.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=self.settings.timeout_seconds,
                sock_connect=self.settings.connect_timeout_seconds,
            ),
            headers=headers,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def encode(self, message: Message) -> tuple[str, bytes]:
        return encode(
            message,
            self.settings.version,
            transfer_encoding=self.settings.transfer_encoding,
            templates=self._templates,
        )

    async def encode_async(self, message: Message) -> tuple[str, bytes]:
        """``encode`` off the event loop when the message carries big media."""
        return await run_sized(payload_bytes(message.attachments), lambda: self.encode(message))

    async def send(self, message: Message) -> SendResult:
        content_type, body = await self.encode_async(message)
        return await self.post(content_type, body)

    async def probe(self) -> SendResult:
        """A cheap ``HEAD`` of the MM7 URL (no MM7 message: the MMSC has nothing to act
        on); any HTTP answer proves the MMSC reachable, its status says how healthy."""
        if self._session is None:
            raise RuntimeError("MmscClient.open() was not called")
        started = time.monotonic()
        try:
            async with self._session.head(self.settings.url, allow_redirects=False) as response:
                status = response.status
        except TimeoutError:
            return SendResult("timeout", time.monotonic() - started, error="timeout")
        except (aiohttp.ClientError, OSError) as exc:
            return SendResult(
                "network_error", time.monotonic() - started, error=f"{type(exc).__name__}: {exc}"
            )
        return SendResult(
            "response" if status < 500 else "http_error",
            time.monotonic() - started,
            http_status=status,
            error=None if status < 500 else f"HTTP {status}",
        )

    async def post(self, content_type: str, body: bytes) -> SendResult:
        if self._session is None:
            raise RuntimeError("MmscClient.open() was not called")
        started = time.monotonic()
        try:
            async with self._session.post(
                self.settings.url, data=body, headers={"Content-Type": content_type}
            ) as response:
                raw = await response.read()
                status = response.status
                response_type = response.headers.get("Content-Type")
        except TimeoutError:
            return SendResult("timeout", time.monotonic() - started, error="timeout")
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            return SendResult(
                "network_error", time.monotonic() - started, error=f"{type(exc).__name__}: {exc}"
            )
        seconds = time.monotonic() - started
        try:
            decoded = self._responses.decode(raw, response_type) if raw.strip() else None
        except DecodeError as exc:
            decoded = None
            decode_error: str | None = f"undecodable response: {exc}"
        else:
            decode_error = None
        if decoded is not None and status in (200, 500):
            # SOAP 1.1 carries faults with HTTP 500; both codes hold a readable MM7 answer.
            return SendResult("response", seconds, message=decoded, http_status=status)
        return SendResult(
            "http_error",
            seconds,
            message=decoded,
            http_status=status,
            error=f"HTTP {status}" + (f" ({decode_error})" if decode_error else ""),
        )
