"""Hostile input on both listeners: each answered with the documented error, quickly, while
the process stays healthy and the store stays exactly as it was.

Every request is written as raw bytes on a socket (no client library normalises paths,
headers or bodies on our behalf). MM7 listener (``POST /mm7``, HTTP Basic per MMSC):
undecodable bodies get HTTP 500 with a SOAP Fault whose ``VASPErrorRsp`` carries the
status code ``protocol.decode`` assigns to that input; credentials problems get 401.
REST API (Bearer keys): ``{"error": {"code": ...}}`` with 400/401/403/404/413.
Run with ``-s`` to see one JSON line per input: how it was answered and how fast.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.media.links import media_query
from protocol import (
    Address,
    DeliveryReportReq,
    ProtocolError,
    Recipients,
    SenderIdentification,
    SubmitReq,
    VASPErrorRsp,
    decode,
    encode,
)
from tests.gateway.support import API_KEY, make_config

SIGNING_KEY = "hostile-test-signing-key-0123456789"
MM7_USER, MM7_PASSWORD = "mmsc", "mmsc-secret"
BASIC = "Basic " + base64.b64encode(f"{MM7_USER}:{MM7_PASSWORD}".encode()).decode()
QUICK = 3.0  # seconds: every hostile request must be answered faster than this
READ_TIMEOUT = 1.5  # listen.read_timeout_seconds for these tests: stalled clients are cut off
TABLES = (
    "messages",
    "batches",
    "recipients",
    "delivery_reports",
    "inbound_messages",
    "inbound_parts",
    "outbox",
    "suppressions",
)


# -- raw HTTP ------------------------------------------------------------------------------------


def http_request(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


async def exchange(port: int, data: bytes, timeout: float = 10.0) -> Answer:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:

        async def send() -> None:
            try:
                for i in range(0, len(data), 1 << 20):
                    writer.write(data[i : i + (1 << 20)])
                    await writer.drain()
            except ConnectionError:
                pass  # the server answered and closed before reading it all (413)

        sending = asyncio.create_task(send())
        raw = await asyncio.wait_for(reader.read(), timeout)
        await sending
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(lines[0].split()[1]), headers, body, time.monotonic() - started)


# -- hostile bodies --------------------------------------------------------------------------------


def report_xml() -> bytes:
    _, body = encode(
        DeliveryReportReq(
            transaction_id="hostile-1",
            message_id="m-unknown",
            recipient=Address.number("+12025550101"),
            sender=Address.short_code("12345"),
            date=datetime(2026, 1, 1, tzinfo=UTC),
            mm_status="Retrieved",
        )
    )
    return body


def with_doctype(doctype: str, element: bytes = b"<MMStatus>Retrieved</MMStatus>") -> bytes:
    body = report_xml()
    decl_end = body.index(b"?>") + 2
    body = body[:decl_end] + doctype.encode() + body[decl_end:]
    return body.replace(b"<MMStatus>Retrieved</MMStatus>", element)


def billion_laughs() -> bytes:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    return with_doctype(f"<!DOCTYPE env:Envelope [{entities}]>", b"<MMStatus>&lol9;</MMStatus>")


def deep_xml(levels: int = 100_000) -> bytes:
    body = report_xml()
    return body.replace(b"<MMStatus>Retrieved</MMStatus>", b"<a>" * levels + b"</a>" * levels)


def many_parts(count: int = 5000) -> tuple[str, bytes]:
    soap = report_xml()
    parts = [b"--b\r\nContent-Type: text/xml\r\nContent-ID: <soap>\r\n\r\n" + soap + b"\r\n"]
    parts += [
        f"--b\r\nContent-Type: text/plain\r\nContent-ID: <p{i}>\r\n\r\nx\r\n".encode()
        for i in range(count)
    ]
    return 'multipart/related; boundary="b"; type="text/xml"; start="<soap>"', b"".join(
        parts
    ) + b"--b--\r\n"


def truncated_mime() -> tuple[str, bytes]:
    content_type, body = many_parts(2)
    return content_type, body[: len(body) // 2]


def submit_req_xml() -> bytes:
    _, body = encode(
        SubmitReq(
            transaction_id="hostile-submit",
            sender_identification=SenderIdentification(vasp_id="x"),
            recipients=Recipients(to=(Address.number("+12025550101"),)),
        )
    )
    return body


def deep_json(levels: int = 100_000) -> bytes:
    return b"[" * levels + b"]" * levels


def form(parts: list[tuple[str, bytes]], *, close: bool = True) -> tuple[str, bytes]:
    chunks = [
        b'--xx\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (n.encode(), d)
        for n, d in parts
    ]
    return "multipart/form-data; boundary=xx", b"".join(chunks) + (b"--xx--\r\n" if close else b"")


# -- the test context ----------------------------------------------------------------------------------


@dataclass
class Ctx:
    running: Any
    api_port: int
    mm7_port: int
    media_id: str
    sink_port: int
    sink_hits: list[bytes]

    @property
    def gateway(self) -> Any:
        return self.running.gateway

    def signed(self, media_id: str, expires: int) -> str:
        return media_query(SIGNING_KEY.encode(), media_id, expires)

    async def snapshot(self) -> dict[str, Any]:
        def counts(conn: Any) -> dict[str, int]:
            return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}  # noqa: S608

        state: dict[str, Any] = await self.gateway.store.read(counts)
        state["queue"] = dict(self.gateway.queue.depth)
        state["media_files"] = sum(
            1 for p in self.gateway.media_store.root.rglob("*") if p.is_file()
        )
        return state


@pytest.fixture
async def ctx(tmp_path: Path, mocks: Any, run_gateway: Any) -> AsyncIterator[Ctx]:
    mock = await mocks()
    running = await run_gateway(
        make_config(
            tmp_path / "data",
            mock.url,
            gateway__signing_key=SIGNING_KEY,
            gateway__max_body_bytes=2 * 1024 * 1024,
            listen__read_timeout_seconds=READ_TIMEOUT,
            mmsc_inbound_username=MM7_USER,
            mmsc_inbound_password=MM7_PASSWORD,
        )
    )
    # Something in the store to keep unchanged: one message, submitted, and one media file.
    status, body = await running.submit({"to": "+12025550101", "text": "seed"})
    assert status == 202
    await running.wait_status(body["id"], {"submitted"})
    media_id = await running.gateway.media_store.put(b"\x89PNG\r\n\x1a\nseed-media")
    hits: list[bytes] = []

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(await reader.read(1024))
        writer.close()

    server = await asyncio.start_server(sink, "127.0.0.1", 0)
    api_port = running.gateway.listeners.api[1]
    mm7_port = running.gateway.listeners.mm7[1]
    yield Ctx(running, api_port, mm7_port, media_id, server.sockets[0].getsockname()[1], hits)
    server.close()
    await server.wait_closed()


# -- MM7 listener -------------------------------------------------------------------------------------

MM7_FAULTS: dict[str, Callable[[Ctx], tuple[str, bytes]]] = {
    "billion_laughs": lambda c: ("text/xml", billion_laughs()),
    "external_entity_file": lambda c: (
        "text/xml",
        with_doctype(
            '<!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>', b"<MMStatus>&x;</MMStatus>"
        ),
    ),
    "external_entity_network": lambda c: (
        "text/xml",
        with_doctype(
            f'<!DOCTYPE e [<!ENTITY x SYSTEM "http://127.0.0.1:{c.sink_port}/xxe">]>',
            b"<MMStatus>&x;</MMStatus>",
        ),
    ),
    "external_dtd": lambda c: (
        "text/xml",
        with_doctype(f'<!DOCTYPE e SYSTEM "http://127.0.0.1:{c.sink_port}/dtd">'),
    ),
    "internal_dtd": lambda c: ("text/xml", with_doctype("<!DOCTYPE e [<!ELEMENT e ANY>]>")),
    "parameter_entity": lambda c: (
        "text/xml",
        with_doctype(
            f'<!DOCTYPE e [<!ENTITY % p SYSTEM "http://127.0.0.1:{c.sink_port}/pe"> %p;]>'
        ),
    ),
    "deep_xml_nesting": lambda c: ("text/xml", deep_xml()),
    "thousands_of_mime_parts": lambda c: many_parts(),
    "truncated_mime": lambda c: truncated_mime(),
    "boundary_that_never_occurs": lambda c: (
        'multipart/related; boundary="nowhere"; type="text/xml"',
        b"--elsewhere\r\n\r\n" + report_xml(),
    ),
    "invalid_utf8": lambda c: (
        "text/xml; charset=utf-8",
        report_xml().replace(b"Retrieved", b"Retr\xff\xfe\xc3ieved"),
    ),
    "not_xml_at_all": lambda c: ("text/xml", b"\x00\x01\x02 garbage " * 100),
    "empty_body": lambda c: ("text/xml", b""),
    "submit_req_to_the_vasp": lambda c: ("text/xml", submit_req_xml()),
}


def expected_fault_code(content_type: str, body: bytes) -> int:
    """The status code the decoder assigns to this input (4003 if it decodes: wrong side)."""
    try:
        decode(body, content_type)
    except ProtocolError as exc:
        return int(exc.status_code)
    return 4003


@pytest.mark.parametrize("name", sorted(MM7_FAULTS))
async def test_mm7_listener_refuses_hostile_bodies_with_a_fault(ctx: Ctx, name: str) -> None:
    content_type, body = MM7_FAULTS[name](ctx)
    before = await ctx.snapshot()
    answer = await exchange(
        ctx.mm7_port,
        http_request("POST", "/mm7", {"Content-Type": content_type, "Authorization": BASIC}, body),
    )
    fault = decode(answer.body, answer.headers.get("content-type"))
    _report("mm7", name, answer, f"VASPErrorRsp {getattr(fault, 'status_code', None)}")
    assert answer.status == 500
    assert isinstance(fault, VASPErrorRsp)
    assert fault.status_code == expected_fault_code(content_type, body)
    assert b"root:" not in answer.body
    assert not ctx.sink_hits, "the parser fetched an external resource"
    await _healthy_and_unchanged(ctx, before, answer)


MM7_HTTP: dict[str, Callable[[Ctx], tuple[bytes, int]]] = {
    "no_credentials": lambda c: (
        http_request("POST", "/mm7", {"Content-Type": "text/xml"}, report_xml()),
        401,
    ),
    "wrong_password": lambda c: (
        http_request(
            "POST",
            "/mm7",
            {
                "Content-Type": "text/xml",
                "Authorization": "Basic " + base64.b64encode(b"mmsc:guess").decode(),
            },
            report_xml(),
        ),
        401,
    ),
    "garbage_authorization": lambda c: (
        http_request(
            "POST", "/mm7", {"Content-Type": "text/xml", "Authorization": "Basic %%%"}, report_xml()
        ),
        401,
    ),
    "bearer_instead_of_basic": lambda c: (
        http_request(
            "POST",
            "/mm7",
            {"Content-Type": "text/xml", "Authorization": f"Bearer {API_KEY}"},
            report_xml(),
        ),
        401,
    ),
    "unknown_mmsc_path": lambda c: (
        http_request(
            "POST", "/mm7/nope", {"Content-Type": "text/xml", "Authorization": BASIC}, report_xml()
        ),
        404,
    ),
    "body_over_16_mib": lambda c: (
        http_request(
            "POST",
            "/mm7",
            {"Content-Type": "text/xml", "Authorization": BASIC},
            b"<" + b"a" * (17 * 1024 * 1024),
        ),
        413,
    ),
    "header_over_8_kib": lambda c: (
        http_request("POST", "/mm7", {"Authorization": BASIC, "X-Big": "a" * 70_000}, b""),
        400,
    ),
    "thousands_of_headers": lambda c: (
        http_request(
            "POST", "/mm7", {"Authorization": BASIC, **{f"X-H{i}": "v" for i in range(5000)}}, b""
        ),
        400,
    ),
}


@pytest.mark.parametrize("name", sorted(MM7_HTTP))
async def test_mm7_listener_refuses_bad_requests_at_the_http_level(ctx: Ctx, name: str) -> None:
    request, status = MM7_HTTP[name](ctx)
    before = await ctx.snapshot()
    answer = await exchange(ctx.mm7_port, request)
    _report("mm7", name, answer, answer.body[:60].decode("latin-1"))
    assert answer.status == status, answer
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Basic")
    await _healthy_and_unchanged(ctx, before, answer)


# -- REST API ---------------------------------------------------------------------------------------------

BEARER = f"Bearer {API_KEY}"
JSON = "application/json"


def _api_post(body: bytes, content_type: str = JSON, **headers: str) -> bytes:
    return http_request(
        "POST",
        "/v1/messages",
        {"Content-Type": content_type, "Authorization": BEARER, **headers},
        body,
    )


def _media(path: str) -> bytes:
    return http_request("GET", path)


MESSAGE = json.dumps({"to": "+12025550101", "text": "hi"}).encode()
FAR = 4_000_000_000

API_CASES: dict[str, Callable[[Ctx], tuple[bytes, int, str]]] = {
    "no_bearer": lambda c: (
        http_request("POST", "/v1/messages", {"Content-Type": JSON}, MESSAGE),
        401,
        "unauthorized",
    ),
    "wrong_bearer": lambda c: (
        http_request(
            "POST", "/v1/messages", {"Content-Type": JSON, "Authorization": "Bearer nope"}, MESSAGE
        ),
        401,
        "unauthorized",
    ),
    "basic_instead_of_bearer": lambda c: (
        http_request(
            "POST", "/v1/messages", {"Content-Type": JSON, "Authorization": BASIC}, MESSAGE
        ),
        401,
        "unauthorized",
    ),
    "inbound_without_bearer": lambda c: (http_request("GET", "/v1/inbound"), 401, "unauthorized"),
    "oversized_json": lambda c: (
        _api_post(b'{"to": "+12025550101", "text": "' + b"x" * (3 * 1024 * 1024) + b'"}'),
        413,
        "payload_too_large",
    ),
    "hundred_thousand_recipients": lambda c: (
        _api_post(json.dumps({"to": ["+12025550101"] * 100_000, "text": "x"}).encode()),
        400,
        "too_many_recipients",
    ),
    "invalid_utf8_json": lambda c: (
        _api_post(b'{"to": "\xff\xfe", "text": "x"}'),
        400,
        "malformed_json",
    ),
    "truncated_json": lambda c: (_api_post(MESSAGE[:-5]), 400, "malformed_json"),
    "json_array_body": lambda c: (_api_post(b"[1, 2, 3]"), 400, "validation_error"),
    "xml_with_dtd_to_the_api": lambda c: (
        _api_post(billion_laughs(), "application/xml"),
        400,
        "unsupported_content_type",
    ),
    "operator_injection_in_to": lambda c: (
        _api_post(b'{"to": {"$ne": null}, "text": "x"}'),
        400,
        "validation_error",
    ),
    "oversized_idempotency_key": lambda c: (
        _api_post(MESSAGE, **{"Idempotency-Key": "k" * 5000}),
        400,
        "validation_error",
    ),
    "header_over_8_kib": lambda c: (
        http_request("GET", "/v1/messages/x", {"Authorization": BEARER, "X-Big": "a" * 70_000}),
        400,
        "",
    ),
    "path_traversal_plain": lambda c: (_media("/v1/media/../../etc/passwd"), 404, "not_found"),
    "path_traversal_encoded": lambda c: (
        _media("/v1/media/..%2F..%2Fetc%2Fpasswd"),
        403,
        "invalid_media_signature",
    ),
    "path_traversal_double_encoded": lambda c: (
        _media("/v1/media/%252e%252e%252fetc%252fpasswd"),
        403,
        "invalid_media_signature",
    ),
    "path_traversal_signed": lambda c: (
        _media("/v1/media/..%2F..%2Fetc%2Fpasswd?" + c.signed("../../etc/passwd", FAR)),
        404,
        "not_found",
    ),
    "path_traversal_signed_backslash": lambda c: (
        _media("/v1/media/..%5C..%5Cetc%5Cpasswd?" + c.signed("..\\..\\etc\\passwd", FAR)),
        404,
        "not_found",
    ),
    "media_unsigned": lambda c: (_media(f"/v1/media/{c.media_id}"), 403, "invalid_media_signature"),
    "media_expired": lambda c: (
        _media(f"/v1/media/{c.media_id}?" + c.signed(c.media_id, int(time.time()) - 1)),
        403,
        "invalid_media_signature",
    ),
    "media_tampered_signature": lambda c: (
        _media(f"/v1/media/{c.media_id}?" + c.signed(c.media_id, FAR).replace("sig=", "sig=0")),
        403,
        "invalid_media_signature",
    ),
    "media_extended_expiry": lambda c: (
        _media(
            f"/v1/media/{c.media_id}?"
            + c.signed(c.media_id, int(time.time()) + 60).split("&")[1]
            + f"&exp={FAR}"
        ),
        403,
        "invalid_media_signature",
    ),
    "media_signature_of_another_id": lambda c: (
        _media(f"/v1/media/{'0' * 64}?" + c.signed(c.media_id, FAR)),
        403,
        "invalid_media_signature",
    ),
    "thousands_of_form_parts": lambda c: (
        _api_post(
            form([("message", MESSAGE)] + [(f"f{i}", b"x") for i in range(5000)])[1],
            form([])[0],
        ),
        400,
        "too_many_media",
    ),
    "deeply_nested_json": lambda c: (_api_post(deep_json()), 400, "malformed_json"),
    "deeply_nested_json_in_form": lambda c: (
        _api_post(form([("message", deep_json())])[1], form([])[0]),
        400,
        "validation_error",
    ),
    "truncated_multipart_form": lambda c: (
        _api_post(
            form([("message", MESSAGE), ("f", b"x" * 100)], close=False)[1][:-60], form([])[0]
        ),
        400,
        "malformed_form",
    ),
}


@pytest.mark.parametrize("name", sorted(API_CASES))
async def test_api_refuses_hostile_requests(ctx: Ctx, name: str) -> None:
    request, status, code = API_CASES[name](ctx)
    before = await ctx.snapshot()
    answer = await exchange(ctx.api_port, request)
    error = json.loads(answer.body)["error"] if code else {}
    _report("api", name, answer, error.get("code") or answer.body[:60].decode("latin-1"))
    assert answer.status == status, answer
    if code:
        assert error["code"] == code, error
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert b"root:" not in answer.body
    await _healthy_and_unchanged(ctx, before, answer)


async def test_signed_media_url_still_works(ctx: Ctx) -> None:
    """The control case: the same listener serves a correctly signed, unexpired link."""
    answer = await exchange(
        ctx.api_port, _media(f"/v1/media/{ctx.media_id}?" + ctx.signed(ctx.media_id, FAR))
    )
    assert answer.status == 200
    assert answer.body == b"\x89PNG\r\n\x1a\nseed-media"


# -- helpers ---------------------------------------------------------------------------------------------------


def _report(listener: str, name: str, answer: Answer, detail: object) -> None:
    print(
        json.dumps(
            {
                "suite": "hostile",
                "listener": listener,
                "input": name,
                "status": answer.status,
                "answer": detail,
                "ms": round(answer.seconds * 1000, 1),
            }
        )
    )


async def _healthy_and_unchanged(ctx: Ctx, before: dict[str, Any], answer: Answer) -> None:
    assert answer.seconds < QUICK, f"answered after {answer.seconds:.2f} s"
    health = await exchange(ctx.running.gateway.listeners.ops[1], http_request("GET", "/healthz"))
    assert health.status == 200
    assert await ctx.snapshot() == before, "a refused request changed the store"


# -- slow clients ----------------------------------------------------------------------------------------------

STALL_LIMIT = READ_TIMEOUT + 3.0  # seconds a stalled request may hold a connection


def _stalls(ctx: Ctx) -> dict[str, tuple[int, bytes]]:
    """Requests that start and then stop sending, per listener (port, bytes sent)."""
    body = report_xml()
    api_head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: {BEARER}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(MESSAGE)}\r\n\r\n"
    ).encode()
    mm7_head = (
        f"POST /mm7 HTTP/1.1\r\nHost: x\r\nAuthorization: {BASIC}\r\n"
        f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return {
        "api_silent": (ctx.api_port, b""),
        "api_partial_headers": (ctx.api_port, api_head[:40]),
        "api_partial_body": (ctx.api_port, api_head + MESSAGE[:10]),
        "mm7_silent": (ctx.mm7_port, b""),
        "mm7_partial_headers": (ctx.mm7_port, mm7_head[:40]),
        "mm7_partial_body": (ctx.mm7_port, mm7_head + body[:100]),
    }


async def _open_stalled(
    port: int, data: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    return reader, writer


async def test_stalled_clients_do_not_block_anyone_else(ctx: Ctx) -> None:
    """Slowloris: a hundred and twenty half-sent requests; the listeners keep answering others."""
    before = await ctx.snapshot()
    stalled = [
        await _open_stalled(port, data) for port, data in _stalls(ctx).values() for _ in range(20)
    ]
    try:
        health = await exchange(
            ctx.running.gateway.listeners.ops[1], http_request("GET", "/healthz")
        )
        submit = await exchange(ctx.api_port, _api_post(MESSAGE))
        report = await exchange(
            ctx.mm7_port,
            http_request(
                "POST", "/mm7", {"Content-Type": "text/xml", "Authorization": BASIC}, report_xml()
            ),
        )
    finally:
        for _, writer in stalled:
            writer.close()
    _report("both", "120_stalled_connections", submit, "others still served")
    assert (health.status, submit.status, report.status) == (200, 202, 200)
    assert max(health.seconds, submit.seconds, report.seconds) < 1.0
    after = await ctx.snapshot()
    # Exactly the two complete requests were stored; the stalled ones left nothing behind.
    assert after["messages"] == before["messages"] + 1
    assert after["delivery_reports"] == before["delivery_reports"] + 1


async def test_stalled_requests_are_cut_off(ctx: Ctx) -> None:
    """listen.read_timeout_seconds closes silent, half-headed and half-bodied requests."""
    before = await ctx.snapshot()
    stalls = _stalls(ctx)
    opened = {name: await _open_stalled(port, data) for name, (port, data) in stalls.items()}

    async def closed_by_server(reader: asyncio.StreamReader) -> bool:
        try:
            await asyncio.wait_for(reader.read(), STALL_LIMIT)
        except TimeoutError:
            return False
        return True

    try:
        results = await asyncio.gather(*(closed_by_server(r) for r, _ in opened.values()))
    finally:
        for _, writer in opened.values():
            writer.close()
    still_open = [name for name, done in zip(opened, results, strict=True) if not done]
    assert not still_open, f"still open after {STALL_LIMIT} s: {still_open}"
    health = await exchange(ctx.running.gateway.listeners.ops[1], http_request("GET", "/healthz"))
    assert health.status == 200
    assert await ctx.snapshot() == before, "a stalled request changed the store"
