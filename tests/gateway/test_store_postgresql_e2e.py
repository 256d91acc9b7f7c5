"""A real gateway on the PostgreSQL store: a message with media goes out through the
mock MMSC and its delivery report comes back; inbound media lands in the shared table."""

from __future__ import annotations

import base64

import aiohttp
import psycopg
import pytest

from gateway.config.model import ENVIRON_CONTEXT_KEY, GatewayConfig
from tests.gateway import pg_support
from tests.gateway.callback_helpers import (
    Receiver,
    eventually,
    get_json,
    message_state,
    raw_config,
    running,
    send_message,
)
from tests.gateway.support import free_port, jpeg_bytes

TO = "+821012345678"


@pytest.fixture(scope="module")
def pg_url():
    yield from pg_support.session_database()


@pytest.fixture
async def receiver():
    hook = Receiver()
    await hook.start()
    yield hook
    await hook.stop()


async def test_message_sent_and_reported_through_the_postgresql_store(
    tmp_path, mock_mmsc, receiver, pg_url
):
    port = free_port()
    mock = await mock_mmsc(vasp_url=f"http://127.0.0.1:{port}/mm7/mock", callback_backoff=0.05)
    raw = raw_config(
        tmp_path,
        mock.url,
        callback_url=receiver.url,
        mmsc={"inbound_username": None, "inbound_password": None},
    )
    raw["listen"]["mm7"] = f"127.0.0.1:{port}"
    raw["store"] = {"url": "env:MM7GW_TEST_STORE_URL", "pool_size": 4}
    raw["cluster"] = {"instance_id": "gw-e2e"}
    raw["gateway"]["signing_key"] = "e2e-signing-key-0123456789abcdef"
    config = GatewayConfig.model_validate(
        raw, context={ENVIRON_CONTEXT_KEY: {"MM7GW_TEST_STORE_URL": pg_url}}
    )
    image = jpeg_bytes()
    async with running(config) as gw, aiohttp.ClientSession() as s:
        status, body = await send_message(
            s, gw, TO, media=[{"content_type": "image/jpeg", "data": base64.b64encode(image).decode()}]
        )
        assert status == 202, body
        message_id = body["id"]

        async def delivered() -> bool:
            return await message_state(s, gw, message_id) == "delivered"

        await eventually(delivered, timeout=15.0)
        _, resource = await get_json(s, gw, f"/v1/messages/{message_id}")
        assert resource["mm7_message_id"]
        await receiver.wait_for(lambda events: len(events) == 2)
    states = [e["data"]["recipients"][0]["status"] for e in receiver.events]
    assert states == ["submitted", "delivered"]
    # Everything is in PostgreSQL: nothing in SQLite or media files under data_dir.
    assert not (tmp_path / "gateway.sqlite3").exists()
    assert not (tmp_path / "media").exists()
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT status, (SELECT claimed_by FROM batches WHERE message_id = %s) "
            "FROM messages WHERE id = %s",
            (message_id, message_id),
        ).fetchone()
        assert row == ("delivered", None)  # the claim ended with the SubmitRsp
        assert conn.execute("SELECT COUNT(*) FROM media").fetchone()[0] >= 1
        outcomes = conn.execute("SELECT outcome FROM delivery_reports").fetchall()
        assert outcomes == [("applied",)]
