"""Webhooks: signatures, retries while the receiver is down, per-message order, dead letters,
and no loss across a kill -9 between committing a callback and delivering its webhook."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from gateway.webhooks.signing import SIGNATURE_HEADER, verify_webhook, webhook_signature
from protocol import encode
from tests.gateway.callback_helpers import (
    WEBHOOK_SECRET,
    Receiver,
    basic,
    build_config,
    delivery_report,
    eventually,
    get_json,
    post_mm7,
    raw_config,
    read_reply,
    running,
    send_message,
    submitted,
)
from tests.gateway.test_callbacks_inbound import deliver

TO = "+821012345678"
REPO_ROOT = str(Path(__file__).resolve().parents[2])


def test_signature_format_and_verification():
    body = b'{"id":"evt_1"}'
    header = webhook_signature("s3cret", body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert len(header.split("v1=")[1]) == 64
    assert verify_webhook("s3cret", body, header, now=1_700_000_010)
    assert not verify_webhook("other", body, header, now=1_700_000_010)
    assert not verify_webhook("s3cret", body + b" ", header, now=1_700_000_010)
    assert not verify_webhook("s3cret", body, header, now=1_700_001_000)  # too old
    assert not verify_webhook("s3cret", body, "garbage", now=1_700_000_010)


async def test_status_events_are_signed_retried_and_in_order(tmp_path, mmsc, receiver):
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    config = build_config(tmp_path, mmsc.url, callback_url=receiver.url)
    receiver.fail_next = 3  # the first three attempts get HTTP 500
    async with running(config) as gw, aiohttp.ClientSession() as s:
        message_id, mm7_id = await submitted(s, gw, TO)
        await post_mm7(s, gw, delivery_report(mm7_id, TO, "Rejected", date=t0))
        await post_mm7(
            s, gw, delivery_report(mm7_id, TO, "Retrieved", date=t0 + timedelta(minutes=1))
        )
        await post_mm7(s, gw, read_reply(mm7_id, TO))
        await receiver.wait_for(lambda events: len(events) == 4)
    assert receiver.failures == 3
    assert receiver.bad_signatures == 0
    assert all(e["type"] == "message.status" for e in receiver.events)
    assert all(e["data"]["message_id"] == message_id for e in receiver.events)
    states = [e["data"]["recipients"][0]["status"] for e in receiver.events]
    assert states == ["submitted", "rejected", "delivered", "read"]
    assert [e["data"].get("report", {}).get("mm_status") for e in receiver.events] == [
        None,
        "Rejected",
        "Retrieved",
        "Read",
    ]
    body, headers = receiver.raw[-1]
    assert verify_webhook(WEBHOOK_SECRET, body, headers[SIGNATURE_HEADER], now=time.time())
    assert headers["X-MM7GW-Event-ID"] == receiver.events[-1]["id"]


async def test_retries_while_the_receiver_is_down(tmp_path, mmsc):
    hook = Receiver()
    await hook.start()
    port = hook.port
    await hook.stop()  # nothing listens on the callback port now
    config = build_config(tmp_path, mmsc.url, callback_url=hook.url)
    async with running(config) as gw, aiohttp.ClientSession() as s:
        status, _, _ = await post_mm7(s, gw, deliver())
        assert status == 200

        async def failed_attempts() -> bool:
            rows = await gw.store.read(
                lambda c: c.execute("SELECT attempts, last_error FROM outbox").fetchall()
            )
            return bool(rows) and rows[0][0] >= 2

        await eventually(failed_attempts)
        await hook.start(port)
        try:
            await hook.wait_for(lambda events: len(events) == 1)
        finally:
            await hook.stop()
        assert hook.events[0]["type"] == "message.inbound"
        assert (
            gw.registry.get_sample_value("mm7gw_webhook_deliveries_total", {"outcome": "retry"})
            >= 2
        )
        # The receiver answered; the gateway records that right after.
        await eventually(
            lambda: (
                gw.registry.get_sample_value(
                    "mm7gw_webhook_deliveries_total", {"outcome": "delivered"}
                )
                == 1
            )
        )
        assert await gw.store.outbox_counts() == {"delivered": 1}


async def test_dead_letter_then_the_stream_moves_on(tmp_path, mmsc, receiver):
    config = build_config(
        tmp_path, mmsc.url, callback_url=receiver.url, webhooks={"max_attempts": 2}
    )
    receiver.fail_next = 2  # the first event fails twice: dead-lettered
    async with running(config) as gw, aiohttp.ClientSession() as s:
        message_id, mm7_id = await submitted(s, gw, TO)
        await post_mm7(s, gw, delivery_report(mm7_id, TO, "Retrieved"))
        await receiver.wait_for(lambda events: len(events) == 1)
        assert receiver.events[0]["data"]["recipients"][0]["status"] == "delivered"
        status, dead = await get_json(s, gw, "/v1/webhooks/dead-letters")
        assert status == 200
        [letter] = dead["data"]
        assert letter["type"] == "message.status"
        assert letter["attempts"] == 2
        assert letter["last_error"] == "HTTP 500"
        assert letter["event"]["data"]["message_id"] == message_id
        assert letter["event"]["data"]["recipients"][0]["status"] == "submitted"
        assert gw.registry.get_sample_value("mm7gw_dead_letters") == 1
        assert (
            gw.registry.get_sample_value(
                "mm7gw_webhook_deliveries_total", {"outcome": "dead_letter"}
            )
            == 1
        )
        async with s.get(
            f"http://{gw.listeners.api[0]}:{gw.listeners.api[1]}/v1/webhooks/dead-letters"
        ) as response:
            assert response.status == 401


async def test_events_without_a_callback_url_are_not_queued(tmp_path, mmsc):
    # The message's own callback_url below is on loopback: allowed explicitly.
    config = build_config(tmp_path, mmsc.url, webhooks={"allow_private_urls": True})
    async with running(config) as gw, aiohttp.ClientSession() as s:
        _, mm7_id = await submitted(s, gw, TO)
        await post_mm7(s, gw, delivery_report(mm7_id, TO, "Retrieved"))
        assert await gw.store.outbox_counts() == {}
        # A message's own callback_url is used even when the key has no default.
        hook = Receiver()
        await hook.start()
        try:
            status, body = await send_message(s, gw, TO, callback_url=hook.url)
            assert status == 202
            await hook.wait_for(lambda events: len(events) == 1)
            assert hook.events[0]["data"]["message_id"] == body["id"]
        finally:
            await hook.stop()


_CHILD = """
import asyncio, json, sys
sys.path.insert(0, {root!r})
from gateway.app import Gateway
from gateway.config.model import GatewayConfig
from gateway.config.values import ENVIRON_CONTEXT_KEY

async def main():
    config = GatewayConfig.model_validate(json.loads(sys.argv[1]), context={{ENVIRON_CONTEXT_KEY: {{}}}})
    gateway = Gateway(config)
    await gateway.start()
    print(json.dumps({{"mm7": gateway.listeners.mm7}}), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_kill_9_between_commit_and_webhook_loses_nothing(tmp_path, mmsc):
    hook = Receiver()
    await hook.start()
    port = hook.port
    await hook.stop()  # the receiver is down while the child gateway runs
    raw = raw_config(tmp_path / "data", mmsc.url, callback_url=hook.url)
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(root=REPO_ROOT))
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(script), json.dumps(raw), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        line = b""
        while not line.startswith(b'{"mm7"'):  # skip the child's log lines
            line = await asyncio.wait_for(child.stdout.readline(), 30)
            assert line, "the child gateway exited"
        host, mm7_port = json.loads(line)["mm7"]
        async with aiohttp.ClientSession() as s:
            content_type, body = encode(deliver())
            async with s.post(
                f"http://{host}:{mm7_port}/mm7",
                data=body,
                headers={"Content-Type": content_type, **basic()},
            ) as response:
                assert response.status == 200  # answered only after the commit
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    await hook.start(port)
    try:
        config = build_config(tmp_path / "data", mmsc.url, callback_url=hook.url)
        async with running(config) as gw:
            await hook.wait_for(lambda events: len(events) == 1)
            assert hook.events[0]["type"] == "message.inbound"
            async with aiohttp.ClientSession() as s:
                _, listing = await get_json(s, gw, "/v1/inbound")
            assert [item["id"] for item in listing["data"]] == [hook.events[0]["data"]["id"]]
    finally:
        await hook.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
    ],
)
async def test_a_client_callback_url_into_our_network_is_refused(tmp_path, mmsc, url):
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        status, body = await send_message(s, gw, TO, callback_url=url)
        assert status == 400, body
        assert body["error"]["code"] == "callback_url_forbidden"
        assert body["error"]["field"] == "callback_url"


async def test_link_local_callback_url_is_refused_even_when_private_is_allowed(tmp_path, mmsc):
    config = build_config(tmp_path, mmsc.url, webhooks={"allow_private_urls": True})
    async with running(config) as gw, aiohttp.ClientSession() as s:
        status, body = await send_message(s, gw, TO, callback_url="http://169.254.169.254/x")
        assert (status, body["error"]["code"]) == (400, "callback_url_forbidden")
        status, _ = await send_message(s, gw, TO, callback_url="http://10.1.2.3/hook")
        assert status == 202


class _FakeResolver:
    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    async def resolve(self, host, port=0, family=0):
        return [
            {"hostname": host, "host": a, "port": port, "family": family, "proto": 0, "flags": 0}
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    ("addresses", "allow_private", "ok"),
    [
        (["93.184.216.34"], False, True),
        (["10.0.0.7"], False, False),
        (["10.0.0.7"], True, True),
        (["93.184.216.34", "127.0.0.1"], False, False),  # one bad answer spoils the host
        (["169.254.169.254"], True, False),  # metadata: never
        (["fe80::1"], True, False),
    ],
)
async def test_client_webhook_hosts_resolve_only_to_allowed_addresses(addresses, allow_private, ok):
    from gateway.webhooks.outbox import GuardedResolver

    resolver = GuardedResolver(allow_private, inner=_FakeResolver(addresses))
    if ok:
        answers = await resolver.resolve("hooks.example.com", 443)
        assert [a["host"] for a in answers] == addresses
    else:
        with pytest.raises(OSError, match="refused address"):
            await resolver.resolve("hooks.example.com", 443)


def test_only_configured_webhook_urls_are_trusted(tmp_path):
    from gateway.webhooks.install import webhook_settings

    config = build_config(tmp_path, "http://127.0.0.1:9/mm7", callback_url="http://10.0.0.5/hook")
    settings = webhook_settings(config)
    assert settings.trusted_urls == frozenset({"http://10.0.0.5/hook"})
    assert settings.allow_private_urls is False
