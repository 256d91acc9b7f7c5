"""Oversized request bodies are refused early and cost no lasting memory.

A real ``mm7-gateway serve`` subprocess. The MM7 listener refuses a body over
``listen.mm7_max_body_bytes`` from its Content-Length before reading it, and a chunked body
as soon as it grows past the limit, with HTTP 413 and a SOAP Fault (VASPErrorRsp 2007); the
REST API does the same with ``gateway.max_body_bytes`` and its error envelope. Repeated
40 MB refusals must not grow the daemon's RSS by anything like the bodies' size.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lxml import etree

from tests.reliability.helpers import AUTH, Daemon, free_port, gateway_toml, wait_http

MIB = 1024 * 1024
MM7_LIMIT = 2 * MIB
API_LIMIT = 1 * MIB
BIG = 40 * MIB
PIECE = 256 * 1024


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[Daemon, dict[str, int]]]:
    ports = {name: free_port() for name in ("api", "mm7", "ops")}
    text = gateway_toml(
        tmp_path / "data",
        "http://127.0.0.1:9/mm7",  # never called: nothing is submitted
        ports,
        gateway={"max_body_bytes": API_LIMIT},
    )
    text = text.replace("[logging]", f"mm7_max_body_bytes = {MM7_LIMIT}\n\n[logging]", 1)
    config = tmp_path / "gateway.toml"
    config.write_text(text)
    gateway = Daemon(["serve", "--config", str(config)], tmp_path / "gateway.log")
    gateway.start()
    try:
        await wait_http(f"http://127.0.0.1:{ports['ops']}/healthz")
        yield gateway, ports
    finally:
        gateway.stop()


def _head(path: str, *, length: int | None, extra: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), headers, body


async def post(
    port: int,
    path: str,
    *,
    chunked: bool,
    send: int,
    total: int = BIG,
    extra: dict[str, str] | None = None,
    prefix: bytes = b"",
) -> tuple[int, dict[str, str], bytes]:
    """Send the headers and ``send`` bytes of a ``total``-byte body, then read the answer.

    With ``send < total`` the answer has to come before the body is complete. The sender
    stops quietly if the server closes the connection under it.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    headers = {"Content-Type": "text/xml", **(extra or {})}
    writer.write(_head(path, length=None if chunked else total, extra=headers))
    piece = b"x" * PIECE

    async def sender() -> None:
        sent = 0
        try:
            if prefix:
                writer.write(b"%x\r\n%s\r\n" % (len(prefix), prefix) if chunked else prefix)
                sent += len(prefix)
            while sent < send:
                data = piece[: min(PIECE, send - sent)]
                writer.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                await writer.drain()
                sent += len(data)
            if chunked and send >= total:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except ConnectionError:
            pass

    sending = asyncio.create_task(sender())
    try:
        answer = await asyncio.wait_for(_read_answer(reader), 30)
        await asyncio.wait_for(sending, 30)
    finally:
        sending.cancel()
        writer.close()
    return answer


def _fault_status(body: bytes) -> str:
    root = etree.fromstring(body)
    codes = [e.text for e in root.iter() if etree.QName(e).localname == "StatusCode"]
    assert codes, body
    return str(codes[0])


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_mm7_refuses_an_oversized_body_before_it_is_all_sent(
    daemon: tuple[Daemon, dict[str, int]], chunked: bool
) -> None:
    _, ports = daemon
    # Content-Length: refused from the header, after one piece. Chunked: refused once past
    # the limit. Either way the client has not sent the rest of its 40 MB when it is answered.
    send = PIECE if not chunked else MM7_LIMIT + 2 * PIECE
    status, headers, body = await post(ports["mm7"], "/mm7/mock", chunked=chunked, send=send)
    assert status == 413
    assert headers["content-type"].startswith("text/xml")
    assert headers.get("connection", "").lower() == "close"
    assert _fault_status(body) == "2007"
    assert str(MM7_LIMIT).encode() in body


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_api_refuses_an_oversized_body_before_it_is_all_sent(
    daemon: tuple[Daemon, dict[str, int]], chunked: bool
) -> None:
    _, ports = daemon
    send = PIECE if not chunked else API_LIMIT + 2 * PIECE
    form_head = (
        b"--b0und\r\n"
        b'Content-Disposition: form-data; name="photo"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n"
    )
    for content_type, prefix in (
        ("application/json", b""),
        ("multipart/form-data; boundary=b0und", form_head),
    ):
        status, _, body = await post(
            ports["api"],
            "/v1/messages",
            chunked=chunked,
            send=send,
            extra={**AUTH, "Content-Type": content_type},
            prefix=prefix,
        )
        assert status == 413, body
        error = json.loads(body)["error"]
        assert error["code"] == "payload_too_large"
        assert str(API_LIMIT) in error["message"]


@pytest.mark.slow
async def test_repeated_40mb_refusals_do_not_grow_rss(
    daemon: tuple[Daemon, dict[str, int]],
) -> None:
    gateway, ports = daemon

    async def refuse(i: int) -> None:
        # Like a real MMSC: send the whole body, then read the answer.
        status, _, _ = await post(ports["mm7"], "/mm7/mock", chunked=i % 2 == 1, send=BIG)
        assert status == 413

    for i in range(2):
        await refuse(i)  # first-use allocations (parser buffers, arenas) are not growth
    before = gateway.rss_kib()
    for i in range(20):
        await refuse(i)
    grown_mib = (gateway.rss_kib() - before) / 1024
    assert grown_mib < 60, f"RSS grew by {grown_mib:.0f} MiB over 20 refused 40 MB bodies"
    assert gateway.alive()
