"""Helpers for the callbacks tests: config on tmp_path, a running Gateway, a minimal MMSC
that answers SubmitReq with a MessageID, a webhook receiver, and MM7 request builders."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.app import Gateway
from gateway.config.model import GatewayConfig
from gateway.config.values import ENVIRON_CONTEXT_KEY
from gateway.webhooks.signing import SIGNATURE_HEADER, verify_webhook
from protocol import (
    Address,
    DeliveryReportReq,
    Message,
    ReadReplyReq,
    SubmitReq,
    SubmitRsp,
    decode,
    encode,
)

API_KEY = "test-api-key-0001"
WEBHOOK_SECRET = "whsec-test"
MMSC_USER = "mmsc"
MMSC_PASSWORD = "mmsc-secret"
SHORT_CODE = "1234"


def basic(user: str = MMSC_USER, password: str = MMSC_PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def bearer(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def raw_config(
    data_dir: Path,
    mmsc_url: str,
    *,
    callback_url: str | None = None,
    mmsc: dict[str, Any] | None = None,
    webhooks: dict[str, Any] | None = None,
    optout: dict[str, Any] | None = None,
    gateway: dict[str, Any] | None = None,
) -> dict[str, Any]:
    key: dict[str, Any] = {"name": "app", "key": API_KEY, "webhook_secret": WEBHOOK_SECRET}
    if callback_url is not None:
        key["callback_url"] = callback_url
    data: dict[str, Any] = {
        "gateway": {"data_dir": str(data_dir), **(gateway or {})},
        "listen": {"api": "127.0.0.1:0", "mm7": "127.0.0.1:0", "ops": "127.0.0.1:0"},
        "api_keys": [key],
        "mmsc": [
            {
                "name": "mock",
                "url": mmsc_url,
                "sender": SHORT_CODE,
                "tps": 0.0,
                "max_in_flight": 4,
                "route_default": True,
                "inbound_username": MMSC_USER,
                "inbound_password": MMSC_PASSWORD,
                **(mmsc or {}),
            }
        ],
        "webhooks": {
            "initial_backoff_seconds": 0.05,
            "max_backoff_seconds": 0.2,
            "timeout_seconds": 2.0,
            **(webhooks or {}),
        },
        "optout": optout or {},
    }
    return data


def build_config(data_dir: Path, mmsc_url: str, **sections: Any) -> GatewayConfig:
    """A valid config on loopback port 0 (see ``raw_config`` for the keyword sections)."""
    return GatewayConfig.model_validate(
        raw_config(data_dir, mmsc_url, **sections), context={ENVIRON_CONTEXT_KEY: {}}
    )


@asynccontextmanager
async def running(config: GatewayConfig) -> AsyncIterator[Gateway]:
    gateway = Gateway(config)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


def url_of(address: tuple[str, int] | None, path: str) -> str:
    assert address is not None
    return f"http://{address[0]}:{address[1]}{path}"


# -- a minimal MMSC: answers SubmitReq 1000 with a MessageID ------------------------------------
@dataclass
class TinyMmsc:
    submits: list[SubmitReq] = field(default_factory=list)
    runner: web.AppRunner | None = None
    url: str = ""
    counter: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        msg = decode(await request.read(), request.headers.get("Content-Type"))
        assert isinstance(msg, SubmitReq)
        self.submits.append(msg)
        self.counter += 1
        rsp = SubmitRsp(transaction_id=msg.transaction_id, message_id=f"mid-{self.counter}")
        content_type, body = encode(rsp, msg.version or "REL-6-MM7-1-4")
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/mm7", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/mm7"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


# -- a webhook receiver ------------------------------------------------------------------------
@dataclass
class Receiver:
    """Records signed webhook POSTs; ``fail_next`` answers 500 that many times first."""

    secret: str = WEBHOOK_SECRET
    events: list[dict[str, Any]] = field(default_factory=list)
    raw: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    fail_next: int = 0
    failures: int = 0
    runner: web.AppRunner | None = None
    port: int = 0
    bad_signatures: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        self.raw.append((body, headers))
        if self.fail_next > 0:
            self.fail_next -= 1
            self.failures += 1
            return web.Response(status=500)
        if not verify_webhook(
            self.secret, body, request.headers.get(SIGNATURE_HEADER, ""), now=time.time()
        ):
            self.bad_signatures += 1
            return web.Response(status=401)
        self.events.append(json.loads(body))
        self.arrived.set()
        return web.Response(status=204)

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        self.port = int(self.runner.addresses[0][1])

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == event_type]

    async def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 5.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.events):
            if time.monotonic() > deadline:
                raise AssertionError(f"webhooks not received in time; got {self.events}")
            self.arrived.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 0.05)


async def eventually(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Await ``check()`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


# -- MM7 requests --------------------------------------------------------------------------------
def delivery_report(
    message_id: str,
    recipient: str,
    status: str,
    *,
    date: datetime | None = None,
    sender: str = SHORT_CODE,
    transaction_id: str = "dr-1",
) -> DeliveryReportReq:
    return DeliveryReportReq(
        transaction_id=transaction_id,
        message_id=message_id,
        recipient=Address.number(recipient),
        sender=Address.short_code(sender),
        date=date or datetime.now(UTC),
        mm_status=status,
    )


def read_reply(message_id: str, recipient: str, status: str = "Read") -> ReadReplyReq:
    return ReadReplyReq(
        transaction_id="rr-1",
        message_id=message_id,
        recipient=Address.number(recipient),
        sender=Address.short_code(SHORT_CODE),
        time_stamp=datetime.now(UTC),
        mm_status=status,
    )


async def post_mm7(
    session: aiohttp.ClientSession,
    gateway: Gateway,
    message: Message | tuple[str, bytes],
    *,
    version: str = "REL-6-MM7-1-4",
    headers: dict[str, str] | None = None,
    path: str = "/mm7",
) -> tuple[int, bytes, dict[str, str]]:
    if isinstance(message, tuple):
        content_type, body = message
    else:
        content_type, body = encode(message, version)
    send_headers = {"Content-Type": content_type, **(basic() if headers is None else headers)}
    async with session.post(
        url_of(gateway.listeners.mm7, path), data=body, headers=send_headers
    ) as response:
        return response.status, await response.read(), dict(response.headers)


async def send_message(
    session: aiohttp.ClientSession, gateway: Gateway, to: str, **fields: Any
) -> tuple[int, dict[str, Any]]:
    payload = {"to": to, "from": SHORT_CODE, "text": "hello", **fields}
    async with session.post(
        url_of(gateway.listeners.api, "/v1/messages"), json=payload, headers=bearer()
    ) as response:
        return response.status, await response.json()


async def get_json(session: aiohttp.ClientSession, gateway: Gateway, path: str) -> tuple[int, Any]:
    async with session.get(url_of(gateway.listeners.api, path), headers=bearer()) as response:
        return response.status, await response.json()


async def submitted(
    session: aiohttp.ClientSession, gateway: Gateway, to: str, **fields: Any
) -> tuple[str, str]:
    """Send a message and wait until the MMSC accepted it; returns (our id, MM7 MessageID)."""
    status, body = await send_message(session, gateway, to, **fields)
    assert status == 202, body
    message_id = body["id"]

    async def mm7_id() -> str | None:
        _, resource = await get_json(session, gateway, f"/v1/messages/{message_id}")
        return resource["mm7_message_id"] if resource["status"] == "submitted" else None

    return message_id, await eventually(mm7_id)


async def message_state(session: aiohttp.ClientSession, gateway: Gateway, message_id: str) -> str:
    _, resource = await get_json(session, gateway, f"/v1/messages/{message_id}")
    return str(resource["recipients"][0]["status"])
