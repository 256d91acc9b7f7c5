"""Against the bundled mock MMSC: its delivery reports, /admin/deliver and /admin/read-reply."""

from __future__ import annotations

import base64
import socket
from typing import Any

import aiohttp

from gateway.config.model import GatewayConfig
from gateway.config.values import ENVIRON_CONTEXT_KEY
from tests.gateway.callback_helpers import (
    SHORT_CODE,
    Receiver,
    eventually,
    get_json,
    message_state,
    raw_config,
    running,
    send_message,
)

TO = "+821012345678"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def mock_and_config(
    tmp_path, mock_mmsc, receiver: Receiver, **mock_settings: Any
) -> tuple[Any, GatewayConfig]:
    """The mock must know our MM7 URL before we know its URL: reserve our port first.

    The mock presents no callback credentials (its ``callback_username`` path uses the
    deprecated ``aiohttp.BasicAuth``, an error under ``-W error``); our credential checks
    are covered in test_callbacks_mm7_server.py.
    """
    port = free_port()
    mock = await mock_mmsc(
        vasp_url=f"http://127.0.0.1:{port}/mm7/mock", callback_backoff=0.05, **mock_settings
    )
    raw = raw_config(
        tmp_path,
        mock.url,
        callback_url=receiver.url,
        mmsc={"inbound_username": None, "inbound_password": None},
    )
    raw["listen"]["mm7"] = f"127.0.0.1:{port}"
    return mock, GatewayConfig.model_validate(raw, context={ENVIRON_CONTEXT_KEY: {}})


async def admin(mock: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.post(mock.base + path, json=body) as response:
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result


async def test_message_ends_delivered_from_the_mocks_report_then_read(
    tmp_path, mock_mmsc, receiver
):
    mock, config = await mock_and_config(tmp_path, mock_mmsc, receiver)
    async with running(config) as gw, aiohttp.ClientSession() as s:
        status, body = await send_message(s, gw, TO)
        assert status == 202, body
        message_id = body["id"]

        async def delivered() -> bool:
            return await message_state(s, gw, message_id) == "delivered"

        await eventually(delivered)
        _, resource = await get_json(s, gw, f"/v1/messages/{message_id}")
        answer = await admin(
            mock,
            "/admin/read-reply",
            {"message_id": resource["mm7_message_id"], "from": SHORT_CODE, "to": TO},
        )
        assert answer["delivered"] is True
        assert await message_state(s, gw, message_id) == "read"
        await receiver.wait_for(lambda events: len(events) == 3)
    states = [e["data"]["recipients"][0]["status"] for e in receiver.events]
    assert states == ["submitted", "delivered", "read"]


async def test_inbound_from_the_mock_reaches_the_webhook_with_working_media(
    tmp_path, mock_mmsc, receiver
):
    mock, config = await mock_and_config(tmp_path, mock_mmsc, receiver)
    async with running(config) as gw, aiohttp.ClientSession() as s:
        answer = await admin(
            mock,
            "/admin/deliver",
            {
                "from": "+821099998888",
                "to": SHORT_CODE,
                "subject": "pic",
                "text": "hello from a phone",
                "media": [{"content_type": "image/png", "data": base64.b64encode(PNG).decode()}],
                "container": "multipart/related",
            },
        )
        assert answer["delivered"] is True
        assert answer["status_code"] == 1000
        await receiver.wait_for(lambda events: len(events) == 1)
        data = receiver.events[0]["data"]
        assert data["text"] == "hello from a phone"
        image = next(m for m in data["media"] if m["content_type"] == "image/png")
        async with s.get(image["url"]) as response:
            assert response.status == 200
            assert await response.read() == PNG
        assert gw.registry.get_sample_value("mm7gw_inbound_messages_total", {"mmsc": "mock"}) == 1
