"""SMS fallback against a scripted sendsms endpoint on loopback: retries, giving up,
bounded resends, the DLR endpoint's protections and short links.

(The real-Kannel path is in ``test_sms_kannel.py``; a scripted peer is what lets a test
choose 503s, refusals and hung calls.)
"""

from __future__ import annotations

import asyncio
from ipaddress import ip_network
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web

from tests.gateway.support import b64, jpeg_bytes
from tests.gateway.test_sms_kannel import sms_config, wait_recipient


class FakeSendsms:
    """Answers each sendsms call with the next scripted status (then 202); records calls."""

    def __init__(self, script: list[int | str]) -> None:
        self.script = list(script)
        self.calls: list[dict[str, str]] = []
        self.url = ""
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(dict(request.query))
        step = self.script.pop(0) if self.script else 202
        if step == "hang":
            await asyncio.sleep(30)
        status = int(step) if step != "hang" else 202
        text = "0: Accepted for delivery" if status == 202 else "Sending failed"
        return web.Response(status=status, text=text)

    async def start(self) -> FakeSendsms:
        app = web.Application()
        app.router.add_get("/cgi-bin/sendsms", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/cgi-bin/sendsms"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def sendsms():
    started: list[FakeSendsms] = []

    async def start(*script: int | str) -> FakeSendsms:
        fake = await FakeSendsms(list(script)).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.stop()


async def start_sms_gateway(tmp_path, mock_mmsc, run_gateway, fake, *, sms=None, **route):
    mock = await mock_mmsc()
    config = sms_config(tmp_path, mock.url, fake.url, None, mms=False, **route)
    if sms:
        config = config.model_copy(update={"sms": config.sms.model_copy(update=sms)})
    return await run_gateway(config)


async def submit(gw, **body: Any) -> str:
    status, resource = await gw.submit({"to": ["+12025550101"], "text": "hello", **body})
    assert status == 202, resource
    return str(resource["id"])


async def test_503_is_retried_then_accepted_once(tmp_path, mock_mmsc, run_gateway, sendsms):
    fake = await sendsms(503, 503)
    gw = await start_sms_gateway(tmp_path, mock_mmsc, run_gateway, fake)
    message_id = await submit(gw)
    await wait_recipient(gw, message_id, "sms_submitted")
    assert len(fake.calls) == 3
    call = fake.calls[-1]
    assert call["to"] == "+12025550101" and call["text"] == "hello"
    assert (call["charset"], call["coding"], call["dlr-mask"]) == ("UTF-8", "0", "31")
    assert (call["username"], call["password"]) == ("gw", "gw-secret")
    sends = gw.gateway.sms_metrics.sends_total
    assert sends.labels(outcome="retry")._value.get() == 2
    assert sends.labels(outcome="accepted")._value.get() == 1


async def test_gives_up_into_failed(tmp_path, mock_mmsc, run_gateway, sendsms):
    fake = await sendsms(503, 503, 503, 503)
    gw = await start_sms_gateway(tmp_path, mock_mmsc, run_gateway, fake, sms={"max_attempts": 3})
    message_id = await submit(gw)
    resource = await wait_recipient(gw, message_id, "failed")
    assert resource["recipients"][0]["error"].startswith("sms: HTTP 503")
    assert len(fake.calls) == 3


async def test_a_refusal_fails_at_once(tmp_path, mock_mmsc, run_gateway, sendsms):
    fake = await sendsms(403)
    gw = await start_sms_gateway(tmp_path, mock_mmsc, run_gateway, fake)
    message_id = await submit(gw)
    await wait_recipient(gw, message_id, "failed")
    await asyncio.sleep(0.3)
    assert len(fake.calls) == 1


async def test_timed_out_call_is_not_resent_once_kannel_reports_it(
    tmp_path, mock_mmsc, run_gateway, sendsms
):
    """The bound on duplicates: an unanswered call waits for a report before any resend."""
    fake = await sendsms("hang")
    gw = await start_sms_gateway(
        tmp_path, mock_mmsc, run_gateway, fake,
        sms={"timeout_seconds": 0.3, "resend_after_seconds": 1.5},
    )  # fmt: skip
    message_id = await submit(gw)
    while not gw.gateway.sms_metrics.sends_total.labels(outcome="retry")._value.get():
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.8)  # the usual back-off (0.05 s) is long past: no resend yet
    assert len(fake.calls) == 1
    # Kannel did take it: its SMSC-accepted report comes to the dlr-url it was given.
    dlr = fake.calls[0]["dlr-url"].replace("%d", "8")
    async with gw.session.get(dlr) as response:
        assert response.status == 200, await response.text()
    await wait_recipient(gw, message_id, "sms_submitted")
    await asyncio.sleep(2.0)  # past resend_after_seconds
    assert len(fake.calls) == 1


async def test_dlr_endpoint_protection(tmp_path, mock_mmsc, run_gateway, sendsms):
    fake = await sendsms()
    gw = await start_sms_gateway(tmp_path, mock_mmsc, run_gateway, fake)
    message_id = await submit(gw)
    await wait_recipient(gw, message_id, "sms_submitted")
    url = urlsplit(fake.calls[0]["dlr-url"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    endpoint = f"{gw.api}/sms/dlr"

    async def dlr(**params: str) -> tuple[int, dict[str, Any]]:
        async with gw.session.get(endpoint, params=params) as response:
            body = await response.json() if response.status >= 400 else {}
            return response.status, body

    good = {"id": query["id"], "t": query["t"]}
    assert (await dlr(**good, type="3"))[1]["error"]["code"] == "invalid_dlr"
    assert (await dlr(id="x", t=query["t"], type="1"))[1]["error"]["code"] == "invalid_dlr"
    status, body = await dlr(id=query["id"], t="0" * 32, type="1")
    assert (status, body["error"]["code"]) == (403, "invalid_dlr_token")
    other = str(int(query["id"]) + 1)
    status, body = await dlr(id=other, t=query["t"], type="1")  # another id's token
    assert (status, body["error"]["code"]) == (403, "invalid_dlr_token")
    assert (await gw.get(message_id))["recipients"][0]["status"] == "sms_submitted"
    assert (await dlr(**good, type="1"))[0] == 200
    assert (await gw.get(message_id))["recipients"][0]["status"] == "delivered"


async def test_dlr_allow_list(tmp_path, mock_mmsc, run_gateway, sendsms):
    fake = await sendsms()
    gw = await start_sms_gateway(
        tmp_path, mock_mmsc, run_gateway, fake, sms={"dlr_allow_ips": (ip_network("10.0.0.0/8"),)}
    )
    message_id = await submit(gw)
    await wait_recipient(gw, message_id, "sms_submitted")
    async with gw.session.get(fake.calls[0]["dlr-url"].replace("%d", "1")) as response:
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "dlr_forbidden"


async def test_short_link_page_parts_and_miss_limit(tmp_path, mock_mmsc, run_gateway, sendsms):
    fake = await sendsms()
    gw = await start_sms_gateway(tmp_path, mock_mmsc, run_gateway, fake)
    media = [{"content_type": "image/jpeg", "data": b64(jpeg_bytes(size))}
             for size in ((64, 48), (32, 24))]  # fmt: skip
    message_id = await submit(gw, text=None, subject="Holiday", media=media)
    await wait_recipient(gw, message_id, "sms_submitted")
    text = fake.calls[0]["text"]
    subject, link = text.split(" ")
    assert subject == "Holiday"  # no text: the subject
    code = link.rsplit("/", 1)[1]
    assert len(code) == 10
    async with gw.session.get(link) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    assert f'<img src="/m/{code}/0"' in page and f'<img src="/m/{code}/1"' in page
    assert 'name="viewport"' in page
    async with gw.session.get(f"{link}/1") as response:
        assert response.status == 200 and response.content_type == "image/jpeg"
    for _ in range(20):
        async with gw.session.get(f"{gw.api}/m/ZZZZZZZZZZ") as response:
            assert response.status == 404
            assert (await response.json())["error"]["code"] == "link_not_found"
    async with gw.session.get(f"{gw.api}/m/ZZZZZZZZZZ") as response:
        assert response.status == 429
        assert (await response.json())["error"]["code"] == "rate_limited"
    async with gw.session.get(link) as response:  # the client is blocked, even for a hit
        assert response.status == 429


async def test_no_mms_route_without_fallback_refuses_media(tmp_path, mock_mmsc, run_gateway):
    from tests.gateway.support import make_config

    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url, mmsc_mms=False, mmsc_fallback="none"))
    status, body = await gw.submit(
        {
            "to": ["+12025550101"],
            "media": [{"content_type": "image/jpeg", "data": b64(jpeg_bytes())}],
        }
    )
    assert (status, body["error"]["code"]) == (422, "media_not_carried")
    status, body = await gw.submit({"to": ["+12025550101"], "text": "text still goes"})
    assert status == 202
