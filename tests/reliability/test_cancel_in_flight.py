"""A DELETE answered while a SubmitReq is on the wire: the message is never sent again.

The mock MMSC holds the SubmitReq (``latency`` longer than the route's timeout), the
client cancels meanwhile and gets 200. Then the attempt times out (in process), or the
gateway is SIGKILLed and restarted (a ``serve`` subprocess): either way the batch ends
``canceled`` with a ``message.status`` webhook, and the MMSC sees that one SubmitReq
only, never a retry of it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.gateway.callback_helpers import Receiver
from tests.gateway.support import API_KEY, make_config
from tests.reliability.helpers import (
    AUTH,
    Daemon,
    eventually,
    free_port,
    gateway_toml,
    wait_http,
)


async def _posts(mock: Any, count: int) -> None:
    async def arrived() -> bool:
        return len(mock.posts) >= count

    await eventually(arrived, 10.0, f"{count} POST /mm7 at the mock", interval=0.02)


async def test_cancel_in_flight_then_timeout_is_not_retried(
    tmp_path: Path, mocks: Any, run_gateway: Any
) -> None:
    mock = await mocks(latency_ms=3000.0)
    receiver = Receiver(secret=API_KEY)
    await receiver.start()
    try:
        config = make_config(
            tmp_path / "data",
            mock.url,
            mmsc_timeout_seconds=0.5,
            mmsc_connect_timeout_seconds=0.5,
            webhooks__allow_private_urls=True,
            webhooks__initial_backoff_seconds=0.05,
        )
        gw = await run_gateway(config)
        status, body = await gw.submit(
            {"to": "+12025550101", "text": "cancel me", "callback_url": receiver.url}
        )
        assert status == 202, body
        message_id = body["id"]
        await _posts(mock, 1)  # the SubmitReq is on the wire now
        async with gw.session.delete(
            f"{gw.api}/v1/messages/{message_id}", headers={"Authorization": f"Bearer {API_KEY}"}
        ) as response:
            assert response.status == 200, await response.text()
        # The attempt times out (0.5 s); without the invariant it would be retried at once.
        resource = await gw.wait_status(message_id, {"canceled", "failed", "submitted"})
        assert resource["status"] == "canceled", resource
        assert resource["recipients"][0]["status"] == "canceled"
        await receiver.wait_for(
            lambda events: any(
                e["type"] == "message.status" and e["data"]["status"] == "canceled" for e in events
            )
        )
        # Past several more back-offs and timeouts: still the one SubmitReq.
        await asyncio.sleep(1.0)
        assert len(mock.posts) == 1
        assert (await gw.get(message_id))["status"] == "canceled"
    finally:
        await receiver.stop()


@pytest.mark.slow
async def test_cancel_in_flight_then_kill9_is_not_resent(tmp_path: Path, mocks: Any) -> None:
    mock = await mocks(latency_ms=60_000.0)  # answers long after the kill
    ports = {name: free_port() for name in ("api", "mm7", "ops")}
    config = tmp_path / "gateway.toml"
    config.write_text(
        gateway_toml(tmp_path / "data", mock.url, ports, mmsc={"timeout_seconds": 120.0})
    )
    gateway = Daemon(["serve", "--config", str(config)], tmp_path / "gateway.log")
    api = f"http://127.0.0.1:{ports['api']}"
    healthz = f"http://127.0.0.1:{ports['ops']}/healthz"
    gateway.start()
    try:
        await wait_http(healthz)
        async with aiohttp.ClientSession() as session:
            async with session.post(
                api + "/v1/messages", json={"to": "+12025550101", "text": "x"}, headers=AUTH
            ) as response:
                assert response.status == 202, await response.text()
                message_id = (await response.json())["id"]
            await _posts(mock, 1)
            async with session.delete(f"{api}/v1/messages/{message_id}", headers=AUTH) as r:
                assert r.status == 200, await r.text()
            gateway.kill()  # the SubmitReq's outcome is never recorded
            mock.reconfigure(latency="0")  # a resent SubmitReq would now be accepted at once
            gateway.start()
            await wait_http(healthz)

            async def final() -> bool:
                async with session.get(f"{api}/v1/messages/{message_id}", headers=AUTH) as r:
                    return (await r.json())["status"] != "queued"

            await eventually(final, 20.0, "the canceled message leaves 'queued'")
            async with session.get(f"{api}/v1/messages/{message_id}", headers=AUTH) as r:
                resource = await r.json()
            assert resource["status"] == "canceled", resource
            assert resource["recipients"][0]["status"] == "canceled"
            # A resend would have reached the mock by now (it answers at once).
            await asyncio.sleep(1.0)
            assert len(mock.posts) == 1
    finally:
        gateway.stop()


async def test_cancel_of_a_submission_without_message_id_says_so(
    tmp_path: Path, mocks: Any, run_gateway: Any
) -> None:
    """Accepted without a MessageID (REL-5-MM7-1-0's SubmitRsp has no such element, and a
    carrier may leave out the extension that carries it): no CancelReq can name it, so
    DELETE answers 409."""
    mock = await mocks(omit_message_id=True, dr_delay=3600.0)
    gw = await run_gateway(
        make_config(tmp_path / "data", mock.url, mmsc_version="REL-5-MM7-1-0")
    )
    status, body = await gw.submit({"to": "+12025550101", "text": "unnamed"})
    assert status == 202, body
    resource = await gw.wait_status(body["id"], {"submitted"})
    assert resource["recipients"][0]["mm7_message_id"] is None
    async with gw.session.delete(
        f"{gw.api}/v1/messages/{body['id']}", headers={"Authorization": f"Bearer {API_KEY}"}
    ) as response:
        assert response.status == 409, await response.text()
        error = (await response.json())["error"]
    assert error["code"] == "cancel_not_possible"
    assert "without a MessageID" in error["message"]
    assert len(mock.posts) == 1  # the SubmitReq only: no CancelReq went out


async def test_cancel_in_flight_then_rsp_without_message_id_is_reported(
    tmp_path: Path, mocks: Any, run_gateway: Any
) -> None:
    """DELETE while on the wire (200), then the SubmitRsp names no MessageID: the message
    went out and cannot be canceled; the recipient says so and a webhook tells the client."""
    mock = await mocks(latency_ms=800.0, omit_message_id=True, dr_delay=3600.0)
    receiver = Receiver(secret=API_KEY)
    await receiver.start()
    try:
        config = make_config(
            tmp_path / "data",
            mock.url,
            mmsc_version="REL-5-MM7-1-0",
            webhooks__allow_private_urls=True,
            webhooks__initial_backoff_seconds=0.05,
        )
        gw = await run_gateway(config)
        status, body = await gw.submit(
            {"to": "+12025550101", "text": "too late", "callback_url": receiver.url}
        )
        assert status == 202, body
        await _posts(mock, 1)
        async with gw.session.delete(
            f"{gw.api}/v1/messages/{body['id']}", headers={"Authorization": f"Bearer {API_KEY}"}
        ) as response:
            assert response.status == 200, await response.text()

        async def reported() -> bool:
            recipient = (await gw.get(body["id"]))["recipients"][0]
            return "cancel not possible" in (recipient["error"] or "")

        await eventually(reported, 10.0, "the recipient names the impossible cancel")
        resource = await gw.get(body["id"])
        assert resource["status"] == "submitted"
        await receiver.wait_for(
            lambda events: any(
                "cancel not possible" in (r.get("error") or "")
                for e in events
                if e["type"] == "message.status"
                for r in e["data"]["recipients"]
            )
        )
        assert len(mock.posts) == 1  # no CancelReq: there is nothing to name in one
    finally:
        await receiver.stop()
