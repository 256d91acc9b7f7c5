"""SIGKILL during a fallback SMS's sendsms call (``mm7-gateway serve`` subprocess).

The intent survives the kill and is not lost; whether the SMS goes a second time is
bounded: after a restart the unanswered call waits ``resend_after_seconds`` for a
Kannel report, and one that arrives (any type) means it is never sent again.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from tests.gateway.test_sms_fallback import FakeSendsms
from tests.reliability.helpers import AUTH, Daemon, _table, free_port, gateway_toml, wait_http

RESEND_AFTER = 3.0


async def start(tmp_path: Path, fake: FakeSendsms) -> tuple[Daemon, dict[str, int]]:
    ports = {name: free_port() for name in ("api", "mm7", "ops")}
    # No MMSC is ever called: the route takes no MMS and falls back to SMS.
    config = gateway_toml(
        tmp_path / "data", "http://127.0.0.1:9/mm7", ports, mmsc={"mms": False, "fallback": "sms"}
    )
    config += "\n" + _table(
        "sms",
        {
            "sendsms_url": fake.url, "username": "gw", "password": "pw",
            "resend_after_seconds": RESEND_AFTER, "timeout_seconds": 30.0,
        },
    )  # fmt: skip
    path = tmp_path / "gateway.toml"
    path.write_text(config)
    daemon = Daemon(["serve", "--config", str(path)], tmp_path / "gateway.log")
    daemon.start()
    await wait_http(f"http://127.0.0.1:{ports['ops']}/healthz")
    return daemon, ports


async def until(check, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def recipient(api: str, message_id: str) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{api}/v1/messages/{message_id}", headers=AUTH) as response,
    ):
        body = await response.json()
        return dict(body["recipients"][0])


async def kill_during_call(tmp_path: Path, fake: FakeSendsms) -> tuple[Daemon, str, str]:
    daemon, ports = await start(tmp_path, fake)
    api = f"http://127.0.0.1:{ports['api']}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{api}/v1/messages", json={"to": ["+12025550101"], "text": "hi"}, headers=AUTH
        ) as response,
    ):
        assert response.status == 202
        message_id = (await response.json())["id"]
    await until(lambda: len(fake.calls) == 1)  # the call hangs: no answer recorded
    daemon.kill()
    daemon.start()
    await wait_http(f"http://127.0.0.1:{ports['ops']}/healthz")
    return daemon, api, message_id


async def test_kill_during_sendsms_then_kannel_report_means_no_second_sms(tmp_path):
    fake = await FakeSendsms(["hang"]).start()
    try:
        daemon, api, message_id = await kill_during_call(tmp_path, fake)
        try:
            await asyncio.sleep(RESEND_AFTER / 2)
            assert len(fake.calls) == 1  # waiting for a report, not resending
            async with (
                aiohttp.ClientSession() as session,
                session.get(fake.calls[0]["dlr-url"].replace("%d", "8")) as response,
            ):
                assert response.status == 200, await response.text()
            await asyncio.sleep(RESEND_AFTER)
            assert len(fake.calls) == 1
            assert (await recipient(api, message_id))["status"] == "sms_submitted"
        finally:
            daemon.stop()
    finally:
        await fake.stop()


async def test_kill_during_sendsms_without_report_resends_once(tmp_path):
    fake = await FakeSendsms(["hang"]).start()
    try:
        daemon, api, message_id = await kill_during_call(tmp_path, fake)
        try:
            await until(lambda: len(fake.calls) == 2)
            for _ in range(100):
                if (await recipient(api, message_id))["status"] == "sms_submitted":
                    break
                await asyncio.sleep(0.05)
            assert (await recipient(api, message_id))["fallback"] == "sms"
            assert (await recipient(api, message_id))["status"] == "sms_submitted"
            await asyncio.sleep(1.0)
            assert len(fake.calls) == 2  # the one duplicate the bound allows, no more
        finally:
            daemon.stop()
    finally:
        await fake.stop()
