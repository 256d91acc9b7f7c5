"""A populated gateway for console tests (HTTP and Chromium) and the README screenshots:
the real mock MMSC (recording what it receives, sending delivery reports), a webhook
receiver that refuses so events dead-letter, an admin key, one delivered message, one
inbound MMS with an image."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image

from gateway.app import Gateway
from gateway.config.model import GatewayConfig
from gateway.config.values import ENVIRON_CONTEXT_KEY
from gateway.mock_mmsc.app import create_app
from gateway.mock_mmsc.config import MockSettings
from tests.gateway.callback_helpers import (
    API_KEY,
    SHORT_CODE,
    Receiver,
    bearer,
    eventually,
    raw_config,
    url_of,
)
from tests.gateway.support import free_port

ADMIN_KEY = "admin-key-for-the-console-0001"
TO = "+821012345678"
INBOUND_FROM = "+821099998888"
CLIENT_REF = "order-42"
POOL = "promo"
POOL_SENDER = "+14155550199"


def png_image(size: tuple[int, int] = (640, 480)) -> bytes:
    image = Image.new("RGB", size, (30, 110, 200))
    for x in range(0, size[0], 40):
        for y in range(0, size[1], 40):
            image.paste((240, 180, 20), (x, y, x + 20, y + 20))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@dataclass
class Scenario:
    gateway: Gateway
    api: str
    mock_base: str
    record_dir: Path
    receiver: Receiver
    message_id: str
    client: aiohttp.ClientSession

    def url(self, path: str) -> str:
        return self.api + path


def console_config(tmp_path: Path, mmsc_url: str, mm7_port: int, hook_url: str) -> GatewayConfig:
    raw: dict[str, Any] = raw_config(
        tmp_path / "data",
        mmsc_url,
        callback_url=hook_url,
        # A small MMS limit, so a test upload is visibly adapted.
        mmsc={"inbound_username": None, "inbound_password": None, "max_message_bytes": 100_000},
        # One attempt: a refused webhook is dead-lettered at once (something to replay).
        webhooks={"max_attempts": 1},
    )
    raw["api_keys"].append({"name": "ops", "key": ADMIN_KEY, "role": "admin"})
    # A pool for the subscribers page; its sender is not the short code inbound MMS go to.
    raw["pool"] = [
        {"name": POOL, "consent": "opt_in", "sender": [{"address": POOL_SENDER, "kind": "long_code"}]}
    ]
    raw["listen"]["mm7"] = f"127.0.0.1:{mm7_port}"
    return GatewayConfig.model_validate(raw, context={ENVIRON_CONTEXT_KEY: {}})


@asynccontextmanager
async def console_scenario(tmp_path: Path) -> AsyncIterator[Scenario]:
    receiver = Receiver(fail_next=1_000_000)
    await receiver.start()
    mm7_port = free_port()
    record_dir = tmp_path / "mock-record"
    settings = replace(
        MockSettings(),
        vasp_url=f"http://127.0.0.1:{mm7_port}/mm7/mock",
        dr_delay=0.05,
        callback_backoff=0.05,
        record=record_dir,
    )
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    mock_base = "http://127.0.0.1:%d" % runner.addresses[0][1]
    gateway = Gateway(console_config(tmp_path, mock_base + "/mm7", mm7_port, receiver.url))
    await gateway.start()
    client = aiohttp.ClientSession()
    try:
        api = url_of(gateway.listeners.api, "")
        message_id = await send_and_deliver(client, api)
        await inbound_with_image(client, mock_base)
        await eventually(lambda: _dead(gateway), timeout=10)
        yield Scenario(gateway, api, mock_base, record_dir, receiver, message_id, client)
    finally:
        await client.close()
        await gateway.stop()
        await runner.cleanup()
        await receiver.stop()


async def _dead(gateway: Gateway) -> bool:
    return (await gateway.store.outbox_counts()).get("dead", 0) >= 2


async def send_and_deliver(client: aiohttp.ClientSession, api: str, to: str = TO) -> str:
    payload = {"to": to, "from": SHORT_CODE, "text": "Your order ships today", "client_ref": CLIENT_REF}
    async with client.post(api + "/v1/messages", json=payload, headers=bearer(API_KEY)) as r:
        assert r.status == 202, await r.text()
        message_id = str((await r.json())["id"])

    async def delivered() -> bool:
        async with client.get(f"{api}/v1/messages/{message_id}", headers=bearer()) as r:
            return (await r.json())["status"] == "delivered"

    await eventually(delivered, timeout=10)
    return message_id


async def inbound_with_image(client: aiohttp.ClientSession, mock_base: str) -> None:
    body = {
        "from": INBOUND_FROM,
        "to": SHORT_CODE,
        "subject": "photo",
        "text": "look at this",
        "media": [{"content_type": "image/png", "data": base64.b64encode(png_image()).decode()}],
        "container": "multipart/related",
    }
    async with client.post(mock_base + "/admin/deliver", json=body) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["status_code"] == 1000


# -- an operator's browser session, over plain HTTP ------------------------------------------


def hidden_csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def operator() -> aiohttp.ClientSession:
    # unsafe=True: the cookie jar must accept cookies from an IP-address host (127.0.0.1).
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def log_in(session: aiohttp.ClientSession, api: str, key: str = ADMIN_KEY) -> aiohttp.ClientResponse:
    async with session.get(api + "/console/login") as r:
        token = hidden_csrf(await r.text())
    response = await session.post(
        api + "/console/login", data={"api_key": key, "csrf": token}, allow_redirects=False
    )
    await response.read()
    return response


async def page_csrf(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as r:
        assert r.status == 200
        return hidden_csrf(await r.text())
