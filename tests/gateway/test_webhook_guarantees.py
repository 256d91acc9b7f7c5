"""Webhook guarantees checked against independent references and real parts: fixed HMAC
vectors (computed with ``openssl dgst -hmac``), the README's own ``verify()`` run on a real
delivery, the DNS-rebinding guard on a client ``callback_url`` given by name, and the
per-destination cap that keeps one hanging receiver from starving the others."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.webhooks.outbox import destination
from gateway.webhooks.signing import SIGNATURE_HEADER, verify_webhook, webhook_signature
from tests.gateway.callback_helpers import (
    WEBHOOK_SECRET,
    build_config,
    eventually,
    get_json,
    running,
    send_message,
    submitted,
)

TO = "+821012345678"
README = Path(__file__).resolve().parents[2] / "README.md"

# (secret, timestamp, body, hex HMAC-SHA256): `printf '%s' "<t>.<body>" | openssl dgst
# -sha256 -hmac <secret>`, so a bug shared by our signer and verifier cannot hide.
VECTORS = [
    (
        "s3cret",
        1_700_000_000,
        b'{"id":"evt_1","type":"message.status"}',
        "23ece11e25ccd50b96dde573d7d4bbf44905094c55d5ede15ce9bb47ce61129d",
    ),
    (
        "whsec_é🔑",
        1_767_225_600,
        '{"data":{"text":"안녕"}}'.encode(),
        "86197dbb08982839fed385304a734212991cb201adbe306c6cdbb5277d5f7b56",
    ),
    ("k", 0, b"", "6b4a4b8b3c40f1e8f53a3d36682e5f99f7ad2ac1df1c93dfe336f329167641e7"),
]


def readme_verify() -> Any:
    """The ``verify()`` snippet of the README's Webhooks section, executed as written."""
    text = README.read_text()
    match = re.search(
        r"```python\n(import hashlib, hmac, time\n.*?def verify\(.*?)```", text, re.DOTALL
    )
    assert match, "README lost its verify() snippet"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    return namespace["verify"]


@pytest.mark.parametrize(("secret", "timestamp", "body", "mac"), VECTORS)
def test_signatures_match_fixed_vectors(secret, timestamp, body, mac):
    header = webhook_signature(secret, body, timestamp)
    assert header == f"t={timestamp},v1={mac}"
    assert verify_webhook(secret, body, header, now=timestamp + 299)
    assert not verify_webhook(secret, body, f"t={timestamp},v1={mac[:-1]}0", now=timestamp)
    # The README's snippet accepts the same vector (inside its time tolerance).
    assert readme_verify()(secret, header, body, tolerance=10**10)


async def test_readme_verify_accepts_a_real_webhook_and_nothing_else(tmp_path, mmsc, receiver):
    verify = readme_verify()
    config = build_config(tmp_path, mmsc.url, callback_url=receiver.url)
    async with running(config) as gw, aiohttp.ClientSession() as s:
        await submitted(s, gw, TO)
        await receiver.wait_for(lambda events: len(events) == 1)
    body, headers = receiver.raw[0]
    header = headers[SIGNATURE_HEADER]
    assert verify(WEBHOOK_SECRET, header, body)
    assert not verify("another secret", header, body)
    assert not verify(WEBHOOK_SECRET, header, body.replace(b"submitted", b"delivered"))
    stale = re.sub(r"t=(\d+)", lambda m: f"t={int(m.group(1)) - 301}", header)
    assert not verify(WEBHOOK_SECRET, stale, body)


def loopback_name() -> str:
    """This machine's host name, when it resolves to loopback/private addresses only (as
    /etc/hosts makes it on Debian and in containers): a name, not an IP literal."""
    name = socket.gethostname()
    try:
        answers = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    except OSError:
        pytest.skip(f"host name {name!r} does not resolve")
    addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in answers]
    if not addresses or not all(a.is_loopback or a.is_private for a in addresses):
        pytest.skip(f"host name {name!r} resolves to public addresses {answers}")
    return name


@pytest.mark.parametrize("allow_private", [False, True])
async def test_a_client_callback_url_by_name_connects_through_the_guarded_resolver(
    tmp_path, mmsc, receiver, allow_private
):
    # The name passes the submission check (only IP literals and localhost are refused
    # there); only the resolver used at connection time can stop it.
    url = f"http://{loopback_name()}:{receiver.port}/hook"
    webhooks = {"allow_private_urls": allow_private, "max_attempts": 1}
    config = build_config(tmp_path, mmsc.url, webhooks=webhooks)
    async with running(config) as gw, aiohttp.ClientSession() as s:
        status, body = await send_message(s, gw, TO, callback_url=url)
        assert status == 202, body
        if allow_private:
            await receiver.wait_for(lambda events: len(events) == 1)
            return

        async def dead() -> list[dict[str, Any]]:
            return (await get_json(s, gw, "/v1/webhooks/dead-letters"))[1]["data"]

        [letter] = await eventually(dead)
    assert "resolves to a refused address" in letter["last_error"]
    assert receiver.raw == []


class HangingReceiver:
    """Accepts webhook POSTs and answers none until released; counts them in flight."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/hook"

    async def stop(self) -> None:
        self.release.set()
        if self.runner is not None:
            await self.runner.cleanup()


async def test_a_hanging_receiver_does_not_starve_the_others(tmp_path, mmsc, receiver):
    hanging = HangingReceiver()
    await hanging.start()
    # Attempts would hang far longer than the test waits for the other receiver.
    webhooks = {
        "allow_private_urls": True,
        "timeout_seconds": 60.0,
        "per_destination_concurrency": 2,
    }
    config = build_config(tmp_path, mmsc.url, webhooks=webhooks)
    async with running(config) as gw, aiohttp.ClientSession() as s:
        try:
            # More streams to the hanging receiver than the worker has slots (8).
            for _ in range(10):
                status, _ = await send_message(s, gw, TO, callback_url=hanging.url)
                assert status == 202
            await eventually(lambda: hanging.in_flight >= 2)
            ids = set()
            for _ in range(3):
                status, body = await send_message(s, gw, TO, callback_url=receiver.url)
                assert status == 202
                ids.add(body["id"])
            await receiver.wait_for(lambda events: len(events) == 3)
            assert {e["data"]["message_id"] for e in receiver.events} == ids
            assert hanging.most_in_flight == 2
        finally:
            # Answer the hung POSTs, so the gateway's stop need not wait for them.
            await hanging.stop()


def test_destination_is_scheme_host_and_port():
    assert destination("http://Hooks.Example.com/a") == "http://hooks.example.com:80"
    assert destination("https://hooks.example.com:443/b?x=1") == "https://hooks.example.com:443"
    assert destination("https://hooks.example.com:8443/") == "https://hooks.example.com:8443"
    assert destination("http://[::1]:9/x") == "http://::1:9"
    assert destination("http://h:99999/") == "http://h:99999/"  # invalid port: its own key
