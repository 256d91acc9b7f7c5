"""Media by URL against a real local test server: limits, content types, redirects, SSRF.

Every request goes to 127.0.0.1. Other addresses (link-local, metadata, private) only
appear in the address policy and in fake DNS answers that the fetcher must refuse before
it connects anywhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.errors import ApiError
from gateway.media.fetch import FetchPolicy, _PinnedResolver, address_allowed, fetch_media
from tests.gateway.support import jpeg_bytes, make_config

TO = "+12025550101"
JPEG = jpeg_bytes()
CAP = 4096
POLICY = FetchPolicy(timeout_seconds=2.0, max_bytes=CAP, max_redirects=3, allow_private=True)
FIELD = "media[0]"


@dataclass
class MediaServer:
    base: str
    port: int
    hits: Counter[str] = field(default_factory=Counter)
    chunks_sent: int = 0

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
async def media_server() -> AsyncIterator[MediaServer]:
    release = asyncio.Event()  # ends the slow handlers at teardown
    server = MediaServer(base="", port=0)

    async def image(request: web.Request) -> web.Response:
        server.hits[request.path] += 1
        return web.Response(body=JPEG, content_type="image/jpeg")

    async def typed(request: web.Request) -> web.Response:
        server.hits[request.path] += 1
        return web.Response(body=b"BEGIN:VCARD", headers={"Content-Type": request.query["ct"]})

    async def declared_big(request: web.Request) -> web.Response:
        server.hits[request.path] += 1
        return web.Response(body=b"x" * (CAP * 4), content_type="image/png")

    async def chunked(request: web.Request) -> web.StreamResponse:
        server.hits[request.path] += 1
        response = web.StreamResponse(headers={"Content-Type": "image/gif"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(64):  # 64 x 512 bytes: eight times the cap, bounded
                await response.write(b"g" * 512)
                server.chunks_sent += 1
                await asyncio.sleep(0.002)
            await response.write_eof()
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass
        return response

    async def slow_headers(request: web.Request) -> web.Response:
        server.hits[request.path] += 1
        await asyncio.wait_for(release.wait(), 10)
        return web.Response(body=JPEG, content_type="image/jpeg")

    async def slow_body(request: web.Request) -> web.StreamResponse:
        server.hits[request.path] += 1
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        response.content_length = len(JPEG)
        await response.prepare(request)
        try:
            await response.write(JPEG[:10])
            await asyncio.wait_for(release.wait(), 10)
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass
        return response

    async def loop(request: web.Request) -> web.Response:
        server.hits[request.path] += 1
        raise web.HTTPFound("/loop")

    async def chain(request: web.Request) -> web.Response:
        server.hits[request.path] += 1
        left = int(request.match_info["n"])
        raise web.HTTPFound(f"/chain/{left - 1}" if left > 1 else "/image.jpg")

    async def redirect_to(request: web.Request) -> web.Response:
        server.hits[request.path] += 1
        raise web.HTTPFound(request.query["location"])

    async def missing(request: web.Request) -> web.Response:
        server.hits[request.path] += 1
        raise web.HTTPNotFound

    app = web.Application()
    app.router.add_get("/image.jpg", image)
    app.router.add_get("/typed", typed)
    app.router.add_get("/declared-big", declared_big)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/slow-headers", slow_headers)
    app.router.add_get("/slow-body", slow_body)
    app.router.add_get("/loop", loop)
    app.router.add_get("/chain/{n}", chain)
    app.router.add_get("/to", redirect_to)
    app.router.add_get("/missing", missing)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = runner.addresses[0][1]
    server.base = f"http://127.0.0.1:{server.port}"
    yield server
    release.set()
    await runner.cleanup()


async def fetch(url: str, policy: FetchPolicy = POLICY, **kwargs: Any) -> tuple[str | None, bytes]:
    async with aiohttp.ClientSession() as session:
        return await fetch_media(session, url, policy, FIELD, **kwargs)


async def refused(url: str, policy: FetchPolicy = POLICY, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await fetch(url, policy, **kwargs)
    assert caught.value.field == FIELD
    return caught.value


class FakeDns:
    """A lookup answering scripted addresses per host; each call takes the next answer."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        script = self.answers[host]
        return script.pop(0) if len(script) > 1 else script[0]


# -- fetching: success, size, time, redirects, types -------------------------------------------
async def test_plain_fetch_returns_type_and_bytes(media_server):
    content_type, data = await fetch(media_server.url("/image.jpg"))
    assert (content_type, data) == ("image/jpeg", JPEG)


async def test_content_length_over_the_cap_is_refused(media_server):
    error = await refused(media_server.url("/declared-big"))
    assert (error.http_status, error.code) == (413, "payload_too_large")


async def test_chunked_body_growing_past_the_cap_is_cut_off(media_server):
    error = await refused(media_server.url("/chunked"))
    assert (error.http_status, error.code) == (413, "payload_too_large")
    await asyncio.sleep(0.05)
    # The fetcher stopped reading soon after the cap; the server never sent it all.
    assert media_server.chunks_sent < 64


async def test_chunked_body_under_the_cap_is_fine(media_server):
    policy = FetchPolicy(timeout_seconds=5.0, max_bytes=64 * 512, allow_private=True)
    content_type, data = await fetch(media_server.url("/chunked"), policy)
    assert content_type == "image/gif" and data == b"g" * 64 * 512


@pytest.mark.parametrize("path", ["/slow-headers", "/slow-body"])
async def test_slow_server_times_out(media_server, path):
    policy = FetchPolicy(timeout_seconds=0.3, max_bytes=CAP, allow_private=True)
    started = time.monotonic()
    error = await refused(media_server.url(path), policy)
    assert (error.http_status, error.code) == (400, "media_fetch_failed")
    assert "0.3 seconds" in error.message
    assert time.monotonic() - started < 2.0
    assert media_server.hits[path] == 1


async def test_redirect_loop_is_bounded(media_server):
    error = await refused(media_server.url("/loop"))
    assert (error.http_status, error.code) == (400, "media_fetch_failed")
    assert "redirected more than 3 times" in error.message
    assert media_server.hits["/loop"] == POLICY.max_redirects + 1


async def test_redirects_within_the_bound_are_followed(media_server):
    assert (await fetch(media_server.url("/chain/3")))[1] == JPEG
    error = await refused(media_server.url("/chain/4"))
    assert error.code == "media_fetch_failed"
    assert media_server.hits["/image.jpg"] == 1


async def test_error_status_is_refused(media_server):
    error = await refused(media_server.url("/missing"))
    assert (error.code, error.message) == ("media_fetch_failed", "media URL answered HTTP 404")


@pytest.mark.parametrize(
    "content_type",
    [
        "image/jpeg",
        "IMAGE/PNG",
        "audio/amr",
        "video/mp4",
        "text/plain; charset=utf-8",
        "text/vcard",
        "text/x-vcard",
        "text/directory",
        "application/smil",
        "application/octet-stream",
    ],
)
async def test_media_types_are_accepted(media_server, content_type):
    declared, data = await fetch(media_server.url(f"/typed?ct={content_type}"))
    assert declared == content_type.split(";")[0].lower()
    assert data == b"BEGIN:VCARD"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/html",
        "text/html; charset=utf-8",
        "application/json",
        "application/xml",
        "application/javascript",
        "multipart/form-data; boundary=x",
        "image",
    ],
)
async def test_types_that_cannot_be_media_are_refused(media_server, content_type):
    error = await refused(media_server.url(f"/typed?ct={content_type}"))
    assert (error.http_status, error.code) == (400, "media_type_refused")
    assert content_type.split(";")[0] in error.message


async def test_absent_content_type_is_accepted():
    """aiohttp always sends a Content-Type, so a raw server answers this one."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(JPEG) + JPEG
        )
        await writer.drain()
        writer.close()

    raw = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = raw.sockets[0].getsockname()[1]
    try:
        assert await fetch(f"http://127.0.0.1:{port}/x") == (None, JPEG)
    finally:
        raw.close()
        await raw.wait_closed()


async def test_non_http_url_is_refused():
    error = await refused("file:///etc/passwd")
    assert error.code == "invalid_media_url"


# -- address policy -----------------------------------------------------------------------------
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"]
PRIVATE = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "::1",
    "fd12:3456::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
]
ALWAYS_REFUSED = [
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "fe80::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "224.0.0.1",
    "239.255.255.250",
    "ff02::1",
    "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
    "0.1.2.3",
    "::",
    "240.0.0.1",
    "255.255.255.255",
    "100.100.100.200",  # shared address space (a cloud's metadata service)
    "192.0.2.10",  # documentation
]


@pytest.mark.parametrize("text", PUBLIC)
def test_global_addresses_are_allowed(text):
    assert address_allowed(ipaddress.ip_address(text), allow_private=False)
    assert address_allowed(ipaddress.ip_address(text), allow_private=True)


@pytest.mark.parametrize("text", PRIVATE)
def test_private_and_loopback_need_the_setting(text):
    assert not address_allowed(ipaddress.ip_address(text), allow_private=False)
    assert address_allowed(ipaddress.ip_address(text), allow_private=True)


@pytest.mark.parametrize("text", ALWAYS_REFUSED)
def test_link_local_multicast_reserved_are_refused_even_when_private_is_allowed(text):
    assert not address_allowed(ipaddress.ip_address(text), allow_private=False)
    assert not address_allowed(ipaddress.ip_address(text), allow_private=True)


async def test_loopback_is_refused_unless_allowed(media_server):
    policy = FetchPolicy(timeout_seconds=2.0, max_bytes=CAP, allow_private=False)
    for url in (media_server.url("/image.jpg"), f"http://[::1]:{media_server.port}/image.jpg"):
        error = await refused(url, policy)
        assert (error.http_status, error.code) == (400, "media_url_forbidden")
    dns = FakeDns({"media.test": [["127.0.0.1"]]})
    error = await refused(f"http://media.test:{media_server.port}/image.jpg", policy, lookup=dns)
    assert error.code == "media_url_forbidden"
    assert dns.calls == [("media.test", media_server.port)]
    assert sum(media_server.hits.values()) == 0


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://[fe80::1]/",
        "http://0.0.0.0:1/",
        "http://metadata.test/computeMetadata/v1/",
    ],
)
async def test_every_redirect_hop_is_checked(media_server, location):
    dns = FakeDns({"metadata.test": [["169.254.169.254"]]})
    error = await refused(media_server.url(f"/to?location={location}"), lookup=dns)
    assert (error.http_status, error.code) == (400, "media_url_forbidden")
    assert media_server.hits["/to"] == 1


async def test_one_refused_answer_refuses_the_host(media_server):
    dns = FakeDns({"media.test": [["127.0.0.1", "169.254.169.254"]]})
    error = await refused(f"http://media.test:{media_server.port}/image.jpg", lookup=dns)
    assert error.code == "media_url_forbidden"
    assert sum(media_server.hits.values()) == 0


async def test_unresolvable_host_fails_cleanly(media_server):
    dns = FakeDns({"nowhere.test": [[]]})
    error = await refused("http://nowhere.test/x.jpg", lookup=dns)
    assert (error.code, error.message) == ("media_fetch_failed", "media URL host does not resolve")


# -- DNS rebinding --------------------------------------------------------------------------------
async def test_connection_goes_to_the_vetted_address(media_server):
    """The name is resolved once per hop; a second answer (rebinding) is never used.

    ``media.test`` does not exist for the system resolver, so the fetch only works when the
    connection goes to the address the check saw.
    """
    dns = FakeDns({"media.test": [["127.0.0.1"], ["169.254.169.254"]]})
    url = f"http://media.test:{media_server.port}/image.jpg"
    assert await fetch(url, lookup=dns) == ("image/jpeg", JPEG)
    assert dns.calls == [("media.test", media_server.port)]
    assert media_server.hits["/image.jpg"] == 1


async def test_rebinding_between_redirect_hops_is_refused(media_server):
    dns = FakeDns({"media.test": [["127.0.0.1"], ["169.254.169.254"]]})
    url = f"http://media.test:{media_server.port}/to?location=/image.jpg"
    error = await refused(url, lookup=dns)
    assert error.code == "media_url_forbidden"
    assert len(dns.calls) == 2  # re-resolved and re-checked for the second hop
    assert media_server.hits == Counter({"/to": 1})


async def test_pinned_resolver_only_answers_vetted_addresses():
    resolver = _PinnedResolver()
    resolver.vetted["media.test"] = [ipaddress.ip_address("127.0.0.1")]
    answers = await resolver.resolve("MEDIA.test.", 8080, family=socket.AF_UNSPEC)
    assert [(a["host"], a["port"], a["family"]) for a in answers] == [
        ("127.0.0.1", 8080, socket.AF_INET)
    ]
    assert await resolver.resolve("media.test", 8080, family=socket.AF_INET6) == []
    with pytest.raises(OSError, match="not vetted"):
        await resolver.resolve("other.test", 80)


# -- through the REST API, end to end ---------------------------------------------------------------
def stored_media(data_dir: Path) -> list[Path]:
    root = data_dir / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def message_count(gw: Any) -> int:
    count: int = await gw.gateway.store.read(
        lambda conn: conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    )
    return count


async def test_media_url_end_to_end(tmp_path, media_server, mock_mmsc, run_gateway):
    mock = await mock_mmsc(record=tmp_path / "recorded")
    data_dir = tmp_path / "data"
    gw = await run_gateway(make_config(data_dir, mock.url, gateway__allow_private_media_urls=True))
    status, body = await gw.submit(
        {"to": TO, "text": "look", "media": [{"url": media_server.url("/chain/2")}]}
    )
    assert status == 202, body
    done = await gw.wait_status(body["id"], {"submitted", "delivered"})
    assert done["mm7_message_id"]
    assert "image/jpeg" in [part["content_type"] for part in done["media"]]
    assert media_server.hits["/image.jpg"] == 1
    assert stored_media(data_dir)
    sent = b"".join(p.read_bytes() for p in (tmp_path / "recorded").glob("*-in-request.http"))
    assert b"SubmitReq" in sent and b"image/jpeg" in sent


async def test_loopback_media_url_is_refused_by_default(
    tmp_path, media_server, mock_mmsc, run_gateway
):
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    status, body = await gw.submit(
        {"to": TO, "text": "x", "media": [{"url": media_server.url("/image.jpg")}]}
    )
    assert status == 400, body
    assert body["error"]["code"] == "media_url_forbidden"
    assert body["error"]["field"] == "media[0]"
    assert sum(media_server.hits.values()) == 0
    assert "SubmitReq" not in str(await mock.stats())


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/typed?ct=text/html", 400, "media_type_refused"),
        ("/declared-big", 413, "payload_too_large"),
        ("/chunked", 413, "payload_too_large"),
        ("/loop", 400, "media_fetch_failed"),
        ("/slow-headers", 400, "media_fetch_failed"),
        ("/missing", 400, "media_fetch_failed"),
        ("/to?location=http://169.254.169.254/", 400, "media_url_forbidden"),
    ],
)
async def test_failed_fetch_stores_nothing(
    tmp_path, media_server, mock_mmsc, run_gateway, path, status, code
):
    mock = await mock_mmsc()
    data_dir = tmp_path / "data"
    config = make_config(
        data_dir,
        mock.url,
        gateway__allow_private_media_urls=True,
        gateway__media_fetch_max_bytes=CAP,
        gateway__media_fetch_timeout_seconds=0.3,
    )
    gw = await run_gateway(config)
    # The first part fetches fine; the second fails; neither may be stored.
    media = [{"url": media_server.url("/image.jpg")}, {"url": media_server.url(path)}]
    answer, body = await gw.submit({"to": TO, "text": "x", "media": media})
    assert answer == status, body
    assert body["error"]["code"] == code
    assert body["error"]["field"] == "media[1]"
    assert media_server.hits["/image.jpg"] == 1
    assert stored_media(data_dir) == []
    assert await message_count(gw) == 0
    assert gw.gateway.queue.total == 0
    assert "SubmitReq" not in str(await mock.stats())
