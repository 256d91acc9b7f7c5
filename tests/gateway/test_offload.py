"""Big payloads are decoded, encoded and hashed off the event loop; small ones stay on it.

Each test wraps the real function at its call site to record the thread it ran on, then
drives the real component (gateway over loopback HTTP, MMSC client, media store).
"""

from __future__ import annotations

import base64
import threading
from typing import Any

import aiohttp
import pytest

import protocol
from gateway.inbound import mm7_server
from gateway.media import store as media_store_module
from gateway.media.offload import OFFLOAD_BYTES
from gateway.media.store import MediaStore
from gateway.outbound import mmsc_client
from tests.gateway.callback_helpers import (
    build_config,
    delivery_report,
    eventually,
    post_mm7,
    running,
    send_message,
)
from tests.gateway.test_callbacks_inbound import PNG, deliver

TO = "+821012345678"
BIG = OFFLOAD_BYTES + 1024


def recording(monkeypatch: pytest.MonkeyPatch, target: Any, name: str) -> list[bool]:
    """Wrap ``target.name``; each call appends whether it ran on the main (loop) thread."""
    real = getattr(target, name)
    on_loop: list[bool] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        on_loop.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapper)
    return on_loop


async def test_mm7_listener_decodes_a_big_deliver_req_off_the_loop(tmp_path, mmsc, monkeypatch):
    on_loop = recording(monkeypatch, mm7_server, "decode")
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        status, _, _ = await post_mm7(s, gw, delivery_report("mid-x", TO, "Retrieved"))
        assert status == 200
        big = deliver(image=PNG + b"\x00" * BIG, transaction_id="dlv-big")
        status, body, headers = await post_mm7(s, gw, big)
        assert status == 200, body
        answer = protocol.decode(body, headers.get("Content-Type"))
        assert isinstance(answer, protocol.DeliverRsp)
        assert answer.status_code == 1000
    assert on_loop == [True, False]


async def test_mmsc_client_encodes_big_media_off_the_loop(mmsc, monkeypatch):
    on_loop = recording(monkeypatch, mmsc_client, "encode")
    client = mmsc_client.MmscClient(mmsc_client.ClientSettings(mmsc.url, "REL-6-MM7-1-4"))
    await client.open()
    try:
        for size in (100, BIG):
            # Nested in a multipart: the size counted is the media's, however deep.
            inner = protocol.Attachment(content_type="audio/amr", data=b"#!AMR\n" + bytes(size))
            request = protocol.SubmitReq(
                transaction_id=f"t-{size}",
                recipients=protocol.Recipients(to=(protocol.Address.number(TO),)),
                attachments=(
                    protocol.Attachment(
                        content_type="multipart/mixed", content_id="mm", parts=(inner,)
                    ),
                ),
            )
            result = await client.send(request)
            assert result.kind == "response", result
    finally:
        await client.close()
    assert on_loop == [True, False]
    assert len(mmsc.submits) == 2


async def test_dispatcher_encodes_a_big_submit_req_off_the_loop(tmp_path, mmsc, monkeypatch):
    on_loop = recording(monkeypatch, mmsc_client, "encode")
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        status, body = await send_message(s, gw, TO)
        assert status == 202, body
        await eventually(lambda: len(mmsc.submits) == 1)
        audio = base64.b64encode(b"#!AMR\n" + b"\x3c" * BIG).decode()
        status, body = await send_message(s, gw, TO, media=[{"data": audio}])
        assert status == 202, body
        await eventually(lambda: len(mmsc.submits) == 2)
    assert on_loop == [True, False]


async def test_media_store_hashes_big_media_off_the_loop(tmp_path, monkeypatch):
    real = media_store_module.hashlib

    class Hashlib:
        def __init__(self) -> None:
            self.on_loop: list[bool] = []

        def sha256(self, data: bytes) -> Any:
            self.on_loop.append(threading.current_thread() is threading.main_thread())
            return real.sha256(data)

    hashlib = Hashlib()
    monkeypatch.setattr(media_store_module, "hashlib", hashlib)
    store = MediaStore(tmp_path)
    small = await store.put(b"small image")
    assert hashlib.on_loop[0] is True  # the digest; the file is written in a thread
    hashlib.on_loop.clear()
    big = await store.put(b"\x01" * BIG)
    assert hashlib.on_loop and not any(hashlib.on_loop)
    assert await store.get(big) == b"\x01" * BIG
    assert await store.get(small) == b"small image"
