"""SMS fallback end to end through a real Kannel (bearerbox, smsbox, fakesmsc).

The gateway calls smsbox's sendsms, fakesmsc prints the SMS, Kannel's fake SMSC reports
it delivered to our dlr-url, and the recipient ends ``delivered`` with ``fallback: sms``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from aiohttp import web

from gateway.config.model import GatewayConfig
from tests.gateway.kannel import Kannel, start_kannel
from tests.gateway.support import API_KEY, b64, jpeg_bytes


@pytest.fixture
def kannel(tmp_path: Path) -> Iterator[Kannel]:
    directory = tmp_path / "kannel"
    directory.mkdir()
    running = start_kannel(directory)
    yield running
    running.stop()


@pytest.fixture
async def webhooks() -> Any:
    events: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        events.append(json.loads(await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}/hook", events
    await runner.cleanup()


def sms_config(
    tmp_path: Path, mmsc_url: str, sendsms_url: str, hook: str | None, **route: Any
) -> GatewayConfig:
    raw: dict[str, Any] = {
        "gateway": {"data_dir": str(tmp_path / "data"), "shutdown_grace_seconds": 2.0},
        "listen": {"api": "127.0.0.1:0", "mm7": "127.0.0.1:0", "ops": "127.0.0.1:0"},
        "api_keys": [{"name": "test", "key": API_KEY, **({"callback_url": hook} if hook else {})}],
        "mmsc": [
            {
                "name": "mock", "url": mmsc_url, "sender": "12345", "tps": 0.0,
                "retry": {"initial_backoff_seconds": 0.05, "max_backoff_seconds": 0.5},
                "fallback": "sms", **route,
            }
        ],
        "sms": {
            "sendsms_url": sendsms_url, "username": "gw", "password": "gw-secret",
            "initial_backoff_seconds": 0.05, "max_backoff_seconds": 0.2,
        },
    }  # fmt: skip
    return GatewayConfig.model_validate(raw)


async def wait_recipient(gw: Any, message_id: str, state: str, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        resource = await gw.get(message_id)
        if resource["recipients"][0]["status"] == state:
            return resource
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"recipient never {state}: {resource}")
        await asyncio.sleep(0.05)


async def wait_sms(kannel: Kannel, count: int, timeout: float = 20.0) -> list[str]:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(kannel.received()) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"fakesmsc got {kannel.received()}")
        await asyncio.sleep(0.05)
    return kannel.received()


async def test_no_mms_route_sends_sms_with_short_link_and_kannel_dlr_delivers(
    tmp_path, mock_mmsc, run_gateway, kannel, webhooks
):
    hook, events = webhooks
    mock = await mock_mmsc()
    gw = await run_gateway(sms_config(tmp_path, mock.url, kannel.sendsms_url, hook, mms=False))
    image = jpeg_bytes()
    status, body = await gw.submit(
        {
            "to": ["+12025550101"],
            "text": "Your photo is ready",
            "media": [{"content_type": "image/jpeg", "data": b64(image)}],
        }
    )
    assert status == 202, body
    assert body["recipients"][0] == body["recipients"][0] | {"status": "sms_queued"}
    assert body["recipients"][0]["fallback"] == "sms"
    resource = await wait_recipient(gw, body["id"], "delivered")
    assert resource["recipients"][0]["fallback"] == "sms"
    assert (await mock.stats())["requests"] == {}  # nothing went to the MMSC
    [line] = await wait_sms(kannel, 1)
    sender, to, kind, text = line.split(" ", 3)
    assert (sender, to, kind) == ("12345", "+12025550101", "text")
    first, link = text.rsplit(" ", 1)
    assert first == "Your photo is ready"
    assert link.startswith(gw.api + "/m/")
    async with gw.session.get(link) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/jpeg"
        served = await response.read()
    assert served[:3] == b"\xff\xd8\xff"
    # The states the recipient went through, as the webhooks told them.
    for _ in range(200):
        states = [e["data"]["recipients"][0]["status"] for e in events]
        if "delivered" in states:
            break
        await asyncio.sleep(0.05)
    # sms_submitted may be overtaken by Kannel's report of delivery: both are fine.
    assert states in (["sms_submitted", "delivered"], ["delivered"]), states
    assert all(e["data"]["recipients"][0]["fallback"] == "sms" for e in events)
    scrape = gw.gateway.sms_metrics
    assert scrape.segments_total.labels(coding="gsm7")._value.get() == 1
    assert scrape.reports_total.labels(type="1")._value.get() == 1


async def test_mmsc_rejection_falls_back_to_one_sms(tmp_path, mock_mmsc, run_gateway, kannel):
    mock = await mock_mmsc(fail_rate=((2002, 1.0),))
    gw = await run_gateway(sms_config(tmp_path, mock.url, kannel.sendsms_url, None))
    status, body = await gw.submit({"to": ["+12025550102"], "text": "Grüße — 你好"})
    assert status == 202, body
    resource = await wait_recipient(gw, body["id"], "delivered")
    assert resource["recipients"][0]["fallback"] == "sms"
    [line] = await wait_sms(kannel, 1)
    # Not GSM-7: we asked for coding=2 and the SMSC got UCS-2 (fakesmsc prints it
    # URL-encoded, UTF-16BE).
    _, to, kind, data = line.split(" ", 3)
    assert (to, kind) == ("+12025550102", "ucs-2")
    assert unquote_to_bytes(data.replace("+", " ")).decode("utf-16-be") == "Grüße — 你好"
    assert gw.gateway.sms_metrics.segments_total.labels(coding="ucs2")._value.get() == 1
    await asyncio.sleep(0.5)
    assert len(kannel.received()) == 1  # one SMS per recipient and cause
