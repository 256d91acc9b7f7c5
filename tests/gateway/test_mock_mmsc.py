"""The mock MMSC over real loopback HTTP: faults, auth, delivery reports, admin API."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import protocol
from gateway.mock_mmsc import MockSettings, create_app
from protocol import (
    Address,
    Attachment,
    CancelReq,
    DeliverReq,
    DeliveryReportReq,
    ExtendedCancelReq,
    ExtendedReplaceReq,
    ExtendedReplaceRsp,
    ReadReplyReq,
    Recipients,
    ReplaceReq,
    RSErrorRsp,
    SubmitReq,
    SubmitRsp,
)
from protocol.versions import namespace_for
from tests.conftest import shared_mm7_path
from tests.protocol.xsd import envelope_parts, soap_part, validate

REPO = Path(__file__).resolve().parents[2]
MEDIA = REPO / "fixtures" / "media"
SAMPLES = REPO.parent / "shared" / "mm7" / "samples"

MockFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def submit(
    *recipients: str,
    dr: bool = True,
    tid: str = "tx-1",
    size: int = 1000,
    version: str = protocol.DEFAULT_VERSION,
) -> tuple[str, bytes]:
    message = SubmitReq(
        transaction_id=tid,
        recipients=Recipients(to=tuple(Address.number(r) for r in recipients or ("+15550001",))),
        subject="hello",
        delivery_report=dr,
        attachments=(Attachment(content_type="image/jpeg", data=b"\xff" * size, content_id="img"),),
    )
    return protocol.encode(message, version)


async def post_mm7(
    client: TestClient[Any, Any], ct_body: tuple[str, bytes], **headers: str
) -> tuple[aiohttp.ClientResponse, protocol.Response | None, bytes]:
    content_type, body = ct_body
    async with client.post(
        "/mm7", data=body, headers={"Content-Type": content_type, **headers}
    ) as response:
        raw = await response.read()
        try:
            message = protocol.decode(raw, response.headers.get("Content-Type"))
        except protocol.DecodeError:
            return response, None, raw
        assert isinstance(message, protocol.Response)
        return response, message, raw


@pytest.fixture
async def mock(aiohttp_client: Any) -> MockFactory:
    async def make(
        rng: random.Random | None = None, clock: Any = None, **settings: Any
    ) -> TestClient[Any, Any]:
        kwargs: dict[str, Any] = {"rng": rng}
        if clock is not None:
            kwargs["clock"] = clock
        client: TestClient[Any, Any] = await aiohttp_client(
            create_app(MockSettings(**settings), **kwargs)
        )
        return client

    return make


class Vasp:
    """A tiny VASP MM7 endpoint: records decoded requests, answers from a script."""

    def __init__(self) -> None:
        self.received: list[protocol.Message] = []
        #: (Content-Type, body) of each request as it came over the wire.
        self.raw: list[tuple[str, bytes]] = []
        self.auth: list[str | None] = []
        #: HTTP statuses to answer with, in order; afterwards 200 + success.
        self.script: list[int] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        message = protocol.decode(raw, request.headers.get("Content-Type"))
        self.raw.append((request.headers.get("Content-Type", ""), raw))
        self.received.append(message)
        self.auth.append(request.headers.get("Authorization"))
        self.arrived.set()
        if self.script:
            return web.Response(status=self.script.pop(0), text="busy")
        rsp_class = protocol.RESPONSE_FOR[type(message)]
        ct, body = protocol.encode(
            rsp_class(transaction_id=message.transaction_id, status_code=1000),
            message.version or protocol.DEFAULT_VERSION,
        )
        return web.Response(body=body, headers={"Content-Type": ct})

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"got {len(self.received)} callbacks, wanted {count}")
            await asyncio.sleep(0.01)


@pytest.fixture
async def vasp(aiohttp_server: Any) -> tuple[Vasp, str]:
    receiver = Vasp()
    app = web.Application()
    app.router.add_post("/mm7", receiver.handle)
    server: TestServer = await aiohttp_server(app)
    return receiver, str(server.make_url("/mm7"))


# -- the happy path ------------------------------------------------------------------


async def test_submit_is_accepted_with_unique_message_ids(mock: MockFactory) -> None:
    client = await mock()
    ids = set()
    for i in range(3):
        response, rsp, raw = await post_mm7(client, submit(tid=f"t{i}"))
        assert response.status == 200
        assert response.headers["Content-Length"] == str(len(raw))
        assert isinstance(rsp, SubmitRsp)
        assert rsp.status_code == 1000
        assert rsp.transaction_id == f"t{i}"
        assert rsp.version == protocol.DEFAULT_VERSION
        ids.add(rsp.message_id)
    assert len(ids) == 3
    assert None not in ids


@pytest.mark.parametrize("version", ["REL-5-MM7-1-0", "REL-5-MM7-1-3", "REL-6-MM7-1-2"])
async def test_answers_in_the_request_namespace(mock: MockFactory, version: str) -> None:
    client = await mock()
    _, rsp, _ = await post_mm7(client, submit(version=version))
    assert isinstance(rsp, SubmitRsp)
    assert rsp.version == version
    # REL-5-MM7-1-0's SubmitRsp has no MessageID; the mock adds it like MMSCs of the era.
    assert rsp.message_id is not None
    assert rsp.message_id.startswith("mock-")


async def test_configured_version_overrides_echo(mock: MockFactory) -> None:
    client = await mock(version="REL-5-MM7-1-2")
    _, rsp, _ = await post_mm7(client, submit())
    assert rsp is not None
    assert rsp.version == "REL-5-MM7-1-2"


# -- authentication ------------------------------------------------------------------


async def test_basic_auth_required_when_configured(mock: MockFactory) -> None:
    client = await mock(username="vasp", password="s3cret")
    response, _, _ = await post_mm7(client, submit())
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="mm7"'
    wrong = "Basic " + base64.b64encode(b"vasp:nope").decode()
    response, _, _ = await post_mm7(client, submit(), Authorization=wrong)
    assert response.status == 401
    right = basic("vasp", "s3cret")
    response, rsp, _ = await post_mm7(client, submit(), Authorization=right)
    assert response.status == 200
    assert isinstance(rsp, SubmitRsp)


# -- fault injection ----------------------------------------------------------------


async def test_status_fault_is_a_soap_fault_with_rserrorrsp(mock: MockFactory) -> None:
    client = await mock(fail_rate=((3000, 1.0),))
    response, rsp, raw = await post_mm7(client, submit(tid="f1"))
    assert response.status == 500
    assert b"Fault" in raw
    assert isinstance(rsp, RSErrorRsp)
    assert rsp.status_code == 3000
    assert rsp.transaction_id == "f1"
    assert rsp.fault_code is not None


async def test_status_fault_in_rsp_style(mock: MockFactory) -> None:
    client = await mock(fail_rate=((4006, 1.0),), fault_style="rsp")
    response, rsp, raw = await post_mm7(client, submit())
    assert response.status == 200
    assert b"Fault" not in raw
    assert isinstance(rsp, SubmitRsp)
    assert rsp.status_code == 4006


async def test_http_error_rate(mock: MockFactory) -> None:
    client = await mock(http_error_rate=1.0)
    response, rsp, _ = await post_mm7(client, submit())
    assert response.status == 500
    assert rsp is None  # a bare HTTP error, no SOAP


async def test_drop_closes_the_connection(mock: MockFactory) -> None:
    client = await mock(drop_rate=1.0)
    with pytest.raises(aiohttp.ClientError):
        await post_mm7(client, submit())
    stats = await (await client.get("/admin/stats")).json()
    assert stats["requests"]["SubmitReq"] == {"dropped": 1}


async def test_tps_limit_answers_4006(mock: MockFactory) -> None:
    now = [100.0]
    client = await mock(tps=2, clock=lambda: now[0])
    codes = []
    for _ in range(4):
        _, rsp, _ = await post_mm7(client, submit())
        assert rsp is not None
        codes.append(rsp.status_code)
    assert codes == [1000, 1000, 4006, 4006]
    now[0] += 1.0
    _, rsp, _ = await post_mm7(client, submit())
    assert rsp is not None
    assert rsp.status_code == 1000


async def test_latency(mock: MockFactory) -> None:
    client = await mock(latency_ms=150)
    started = time.monotonic()
    response, _, _ = await post_mm7(client, submit())
    assert response.status == 200
    assert time.monotonic() - started >= 0.15


async def test_max_message_bytes_answers_2004(mock: MockFactory) -> None:
    client = await mock(max_message_bytes=3000)
    _, small, _ = await post_mm7(client, submit(size=100))
    _, large, _ = await post_mm7(client, submit(size=5000))
    assert small is not None
    assert small.status_code == 1000
    assert isinstance(large, RSErrorRsp)
    assert large.status_code == 2004


async def test_max_recipients_answers_3003(mock: MockFactory) -> None:
    client = await mock(max_recipients=2)
    _, ok, _ = await post_mm7(client, submit("+1", "+2"))
    _, refused, _ = await post_mm7(client, submit("+1", "+2", "+3"))
    assert ok is not None
    assert ok.status_code == 1000
    assert isinstance(refused, RSErrorRsp)
    assert refused.status_code == 3003


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"this is not MM7", "text/xml", 2007),
        (
            (
                b"<env:Envelope xmlns:env='http://schemas.xmlsoap.org/soap/envelope/'>"
                b"<env:Body><Nonsense/></env:Body></env:Envelope>"
            ),
            "text/xml",
            4003,
        ),
        (b"<unclosed>", "text/xml", 2007),
    ],
)
async def test_malformed_body_gets_fault(
    mock: MockFactory, body: bytes, content_type: str, code: int
) -> None:
    client = await mock()
    response, rsp, _ = await post_mm7(client, (content_type, body))
    assert response.status == 500
    assert isinstance(rsp, RSErrorRsp)
    assert rsp.status_code == code
    assert rsp.status_text is not None
    assert rsp.status_text.startswith("cannot decode request")


async def test_non_mmsc_operation_gets_4003(mock: MockFactory) -> None:
    client = await mock()
    deliver = DeliverReq(transaction_id="d1", sender=Address.number("+1"))
    _, rsp, _ = await post_mm7(client, protocol.encode(deliver))
    assert isinstance(rsp, RSErrorRsp)
    assert rsp.status_code == 4003


# -- validation: well-formed but invalid requests get 4004 ---------------------------

NS6 = namespace_for("REL-6-MM7-1-4")
SENDER_ID = "<SenderIdentification><VASPID>v</VASPID></SenderIdentification>"
TO = "<Recipients><To><Number>+15550001</Number></To></Recipients>"


def soap(tag: str, inner: str) -> tuple[str, bytes]:
    return "text/xml; charset=utf-8", (
        "<env:Envelope xmlns:env='http://schemas.xmlsoap.org/soap/envelope/'><env:Header>"
        f"<mm7:TransactionID xmlns:mm7='{NS6}'>v-1</mm7:TransactionID></env:Header>"
        f"<env:Body><{tag} xmlns='{NS6}'>{inner}</{tag}></env:Body></env:Envelope>"
    ).encode()


V = "<MM7Version>6.8.0</MM7Version>"


@pytest.mark.parametrize(
    ("ct_body", "missing"),
    [
        (("text/xml", b"<SubmitReq/>"), ["MM7Version", "Recipients"]),
        (soap("SubmitReq", V + SENDER_ID), ["Recipients"]),
        (soap("SubmitReq", V + SENDER_ID + "<Recipients><To/></Recipients>"), ["Recipients"]),
        (soap("SubmitReq", SENDER_ID + TO), ["MM7Version"]),
        # An absent SenderIdentification reads back as an empty one: named from the
        # decoder's missing_mandatory report.
        (soap("SubmitReq", V + TO), ["SenderIdentification"]),
        (soap("CancelReq", V + SENDER_ID), ["MessageID"]),
        (soap("CancelReq", V + SENDER_ID + "<MessageID> </MessageID>"), ["MessageID"]),
        (soap("ReplaceReq", V + SENDER_ID), ["MessageID"]),
        (soap("extendedCancelReq", V + SENDER_ID), ["CancelID"]),
        # ReplaceID is optional in the schema, but names the message to replace.
        (soap("extendedReplaceReq", V + "<VASPID>v</VASPID>"), ["ReplaceID"]),
    ],
)
async def test_missing_mandatory_element_gets_4004(
    mock: MockFactory, ct_body: tuple[str, bytes], missing: list[str]
) -> None:
    client = await mock()
    response, rsp, _ = await post_mm7(client, ct_body)
    assert response.status == 500
    assert isinstance(rsp, RSErrorRsp)
    assert rsp.status_code == 4004
    assert rsp.status_text is not None
    assert rsp.status_text.startswith("validation error: ")
    assert rsp.status_text.endswith("lacks mandatory " + ", ".join(missing))
    stats = await (await client.get("/admin/stats")).json()
    assert list(stats["requests"].values()) == [{"4004": 1}]


async def test_invalid_submit_gets_4004_in_rsp_style_and_no_reports(
    mock: MockFactory, vasp: tuple[Vasp, str]
) -> None:
    receiver, url = vasp
    client = await mock(fault_style="rsp", vasp_url=url, dr_delay=0.0)
    inner = V + SENDER_ID + "<Recipients/><DeliveryReport>true</DeliveryReport>"
    response, rsp, _ = await post_mm7(client, soap("SubmitReq", inner))
    assert response.status == 200
    assert isinstance(rsp, SubmitRsp)
    assert rsp.status_code == 4004
    assert rsp.status_text == "validation error: SubmitReq lacks mandatory Recipients"
    assert rsp.transaction_id == "v-1"
    await asyncio.sleep(0.1)
    assert receiver.received == []
    # The complete request is accepted.
    _, ok, _ = await post_mm7(client, soap("SubmitReq", V + SENDER_ID + TO))
    assert isinstance(ok, SubmitRsp)
    assert ok.status_code == 1000


# -- cancel / replace ---------------------------------------------------------------


async def test_cancel_and_replace(mock: MockFactory) -> None:
    client = await mock()
    _, unknown, _ = await post_mm7(
        client, protocol.encode(CancelReq(transaction_id="c0", message_id="nope"))
    )
    assert isinstance(unknown, RSErrorRsp)
    assert unknown.status_code == 2005
    _, rsp, _ = await post_mm7(client, submit())
    assert isinstance(rsp, SubmitRsp)
    replace = ReplaceReq(transaction_id="r1", message_id=rsp.message_id)
    _, replaced, _ = await post_mm7(client, protocol.encode(replace))
    assert replaced is not None
    assert type(replaced).__name__ == "ReplaceRsp"
    assert replaced.status_code == 1000
    _, canceled, _ = await post_mm7(
        client, protocol.encode(CancelReq(transaction_id="c1", message_id=rsp.message_id))
    )
    assert canceled is not None
    assert type(canceled).__name__ == "CancelRsp"
    assert canceled.status_code == 1000
    _, again, _ = await post_mm7(client, protocol.encode(replace))
    assert isinstance(again, RSErrorRsp)
    assert again.status_code == 2005
    _, fresh, _ = await post_mm7(client, submit())
    assert isinstance(fresh, SubmitRsp)
    ext_replace = ExtendedReplaceReq(
        transaction_id="xr", vasp_id="v", vas_id="s", replace_id=fresh.message_id
    )
    _, swapped, _ = await post_mm7(client, protocol.encode(ext_replace))
    assert isinstance(swapped, ExtendedReplaceRsp)
    assert swapped.status_code == 1000
    assert swapped.message_id not in (None, fresh.message_id)
    _, twice, _ = await post_mm7(client, protocol.encode(ext_replace))
    assert twice is not None
    assert twice.status_code == 2005  # the replaced message is gone
    extended = ExtendedCancelReq(transaction_id="x1", cancel_id="unknown-id")
    _, ext, _ = await post_mm7(client, protocol.encode(extended))
    assert isinstance(ext, RSErrorRsp)
    assert ext.status_code == 2005


# -- delivery reports ---------------------------------------------------------------


async def test_delivery_reports_one_per_recipient(
    mock: MockFactory, vasp: tuple[Vasp, str]
) -> None:
    receiver, url = vasp
    client = await mock(
        vasp_url=url, dr_delay=0.05, callback_username="mmsc", callback_password="pw"
    )
    recipients = ("+15550001", "+15550002", "+15550003")
    _, rsp, _ = await post_mm7(client, submit(*recipients))
    assert isinstance(rsp, SubmitRsp)
    await receiver.wait_for(3)
    assert all(isinstance(m, DeliveryReportReq) for m in receiver.received)
    reports = [m for m in receiver.received if isinstance(m, DeliveryReportReq)]
    assert {r.message_id for r in reports} == {rsp.message_id}
    assert sorted(r.recipient.value for r in reports if r.recipient) == sorted(recipients)
    assert {r.mm_status for r in reports} == {"Retrieved"}
    assert set(receiver.auth) == {basic("mmsc", "pw")}
    stats = await (await client.get("/admin/stats")).json()
    assert stats["callbacks"]["DeliveryReportReq"] == {"delivered": 3}


async def test_no_delivery_report_unless_asked(mock: MockFactory, vasp: tuple[Vasp, str]) -> None:
    receiver, url = vasp
    client = await mock(vasp_url=url, dr_delay=0.0)
    await post_mm7(client, submit(dr=False))
    await asyncio.sleep(0.2)
    assert receiver.received == []


async def test_cancel_before_dr_delay_suppresses_reports(
    mock: MockFactory, vasp: tuple[Vasp, str]
) -> None:
    receiver, url = vasp
    client = await mock(vasp_url=url, dr_delay=0.3)
    _, rsp, _ = await post_mm7(client, submit())
    assert isinstance(rsp, SubmitRsp)
    await post_mm7(
        client, protocol.encode(CancelReq(transaction_id="c", message_id=rsp.message_id))
    )
    await asyncio.sleep(0.5)
    assert receiver.received == []


async def test_delivery_report_retried_after_vasp_errors(
    mock: MockFactory, vasp: tuple[Vasp, str]
) -> None:
    receiver, url = vasp
    receiver.script = [500, 503]
    client = await mock(vasp_url=url, dr_delay=0.0, callback_backoff=0.02)
    started = time.monotonic()
    await post_mm7(client, submit())
    await receiver.wait_for(3)
    # back-off doubles: 0.02 s then 0.04 s
    assert time.monotonic() - started >= 0.06
    assert len({m.transaction_id for m in receiver.received}) == 1
    await asyncio.sleep(0.05)
    stats = await (await client.get("/admin/stats")).json()
    assert stats["callbacks"]["DeliveryReportReq"] == {"delivered": 1, "retried": 2}


async def test_reports_of_one_submission_retry_independently(
    mock: MockFactory, aiohttp_server: Any
) -> None:
    """With the VASP down, each recipient's report runs its own back-off at once: none
    waits behind another's retries, and all arrive together once the VASP is up."""
    attempts: dict[str, list[tuple[float, int]]] = {}
    up_at = [float("inf")]

    async def handle(request: web.Request) -> web.Response:
        message = protocol.decode(await request.read(), request.headers.get("Content-Type"))
        assert isinstance(message, DeliveryReportReq)
        assert message.recipient is not None
        now = time.monotonic()
        status = 200 if now >= up_at[0] else 503
        attempts.setdefault(message.recipient.value, []).append((now, status))
        if status != 200:
            return web.Response(status=status, text="down")
        ct, body = protocol.encode(
            protocol.DeliveryReportRsp(transaction_id=message.transaction_id, status_code=1000)
        )
        return web.Response(body=body, headers={"Content-Type": ct})

    app = web.Application()
    app.router.add_post("/mm7", handle)
    server: TestServer = await aiohttp_server(app)
    client = await mock(
        vasp_url=str(server.make_url("/mm7")),
        dr_delay=0.0,
        callback_backoff=0.1,
        callback_max_backoff=0.2,
        callback_attempts=8,
    )
    recipients = ("+15550001", "+15550002", "+15550003")
    started = time.monotonic()
    up_at[0] = started + 0.45  # down for the first attempts, then up
    _, rsp, _ = await post_mm7(client, submit(*recipients))
    assert isinstance(rsp, SubmitRsp)
    deadline = started + 5.0
    while sum(s == 200 for tries in attempts.values() for _, s in tries) < 3:
        assert time.monotonic() < deadline, attempts
        await asyncio.sleep(0.01)
    assert sorted(attempts) == sorted(recipients)
    # Every report was tried while the VASP was down, right after the submission
    # (one after the other, recipient 3 would only start once 1 and 2 were delivered).
    first_tries = [tries[0] for tries in attempts.values()]
    assert all(status == 503 and at - started < 0.3 for at, status in first_tries), attempts
    # Each report kept its own back-off, so they come back in step ...
    failures = {len([t for t in tries if t[1] != 200]) for tries in attempts.values()}
    assert min(failures) >= 2, attempts
    # ... and all arrive close together once the VASP is up.
    delivered = [at for tries in attempts.values() for at, status in tries if status == 200]
    assert max(delivered) - min(delivered) < 0.15, attempts
    assert max(delivered) - up_at[0] < 0.2 + 0.3, attempts  # one max back-off, plus slack
    stats: dict[str, Any] = {}
    for _ in range(100):
        stats = await (await client.get("/admin/stats")).json()
        if stats["pending_callbacks"] == 0:
            break
        await asyncio.sleep(0.01)
    assert stats["callbacks"]["DeliveryReportReq"]["delivered"] == 3
    assert stats["pending_callbacks"] == 0


async def test_delivery_report_gives_up_after_bounded_attempts(
    mock: MockFactory, unused_tcp_port: int
) -> None:
    # Nothing listens on this port: every attempt fails to connect.
    client = await mock(
        vasp_url=f"http://127.0.0.1:{unused_tcp_port}/mm7",
        dr_delay=0.0,
        callback_backoff=0.01,
        callback_attempts=3,
    )
    await post_mm7(client, submit())
    stats: dict[str, Any] = {}
    for _ in range(200):
        stats = await (await client.get("/admin/stats")).json()
        if stats["callbacks"].get("DeliveryReportReq", {}).get("failed"):
            break
        await asyncio.sleep(0.01)
    assert stats["callbacks"]["DeliveryReportReq"] == {"failed": 1, "retried": 2}
    assert stats["pending_callbacks"] == 0


async def _dr_outcomes(mock: MockFactory, url: str, receiver: Vasp, seed: int) -> list[str]:
    client = await mock(
        vasp_url=url,
        dr_delay=0.0,
        seed=seed,
        dr_outcomes=(("Retrieved", 0.5), ("Rejected", 0.3), ("Expired", 0.2)),
    )
    recipients = [f"+1555{i:04d}" for i in range(60)]
    start = len(receiver.received)
    await post_mm7(client, submit(*recipients))
    await receiver.wait_for(start + 60)
    reports = receiver.received[start:]
    by_recipient = {
        r.recipient.value: r.mm_status
        for r in reports
        if isinstance(r, DeliveryReportReq) and r.recipient and r.mm_status
    }
    return [by_recipient[r] for r in recipients]


async def test_dr_outcomes_follow_weights_and_seed(
    mock: MockFactory, vasp: tuple[Vasp, str]
) -> None:
    receiver, url = vasp
    first = await _dr_outcomes(mock, url, receiver, seed=42)
    second = await _dr_outcomes(mock, url, receiver, seed=42)
    other = await _dr_outcomes(mock, url, receiver, seed=43)
    assert first == second
    assert first != other
    assert set(first) == {"Retrieved", "Rejected", "Expired"}
    assert first.count("Retrieved") > first.count("Expired")


async def test_fault_draws_are_reproducible_with_seed(mock: MockFactory) -> None:
    async def sequence(seed: int | None) -> list[tuple[int, str | None]]:
        client = await mock(seed=seed, fail_rate=((3000, 0.3), (4006, 0.2)))
        answers = []
        for _ in range(30):
            _, rsp, _ = await post_mm7(client, submit())
            assert rsp is not None
            answers.append((rsp.status_code, getattr(rsp, "message_id", None)))
        return answers

    first, second = await sequence(7), await sequence(7)
    # The same seed gives the same answers end to end, MessageIDs included.
    assert first == second
    assert {code for code, _ in first} >= {1000, 3000, 4006}
    ids = [message_id for code, message_id in first if code == 1000]
    assert all(ids) and len(set(ids)) == len(ids)
    other = await sequence(8)
    assert [code for code, _ in other] != [code for code, _ in first]
    assert not {i for _, i in other if i} & set(ids)  # another seed, another prefix
    # Without a seed the prefix stays random: two runs never share MessageIDs.
    unseeded = [{i for _, i in await sequence(None) if i} for _ in range(2)]
    assert not unseeded[0] & unseeded[1]


# -- admin API ----------------------------------------------------------------------


async def test_admin_deliver_sends_deliver_req(mock: MockFactory, vasp: tuple[Vasp, str]) -> None:
    receiver, url = vasp
    client = await mock(vasp_url=url)
    png = (MEDIA / "tiny.png").read_bytes()
    response = await client.post(
        "/admin/deliver",
        json={
            "from": "+15550009999",
            "to": "12345",
            "subject": "inbound",
            "text": "hi there",
            "media": [
                {"fixture": "tiny.jpg"},
                {"content_type": "image/png", "data": base64.b64encode(png).decode()},
            ],
        },
    )
    assert response.status == 200
    answer = await response.json()
    assert answer["delivered"] is True
    assert answer["status_code"] == 1000
    assert answer["response_type"] == "DeliverRsp"
    (deliver,) = receiver.received
    assert isinstance(deliver, DeliverReq)
    assert deliver.transaction_id == answer["transaction_id"]
    assert deliver.sender == Address.number("+15550009999")
    assert deliver.recipients is not None
    assert deliver.recipients.to == (Address.short_code("12345"),)
    assert deliver.subject == "inbound"
    # Like a real MMSC: one multipart/mixed content part, the one Content points at, so a
    # VASP that follows the spec (reads only the referenced part) sees text and media.
    (container,) = deliver.attachments
    assert container.media_type == "multipart/mixed"
    assert deliver.content is not None
    assert deliver.content.href == f"cid:{container.content_id}"
    parts = {a.media_type: a.data for a in container.parts}
    assert parts["text/plain"] == b"hi there"
    assert parts["image/jpeg"] == (MEDIA / "tiny.jpg").read_bytes()
    assert parts["image/png"] == png


async def test_admin_deliver_container_none_sends_sibling_parts(
    mock: MockFactory, vasp: tuple[Vasp, str]
) -> None:
    receiver, url = vasp
    client = await mock(vasp_url=url)
    payload = {"from": "+15550009999", "to": "12345", "text": "hi", "container": "none"}
    payload["media"] = [{"fixture": "tiny.jpg"}]
    assert (await (await client.post("/admin/deliver", json=payload)).json())["delivered"]
    (deliver,) = receiver.received
    assert [a.media_type for a in deliver.attachments] == ["text/plain", "image/jpeg"]
    bad = await client.post("/admin/deliver", json={**payload, "container": "text/plain"})
    assert bad.status == 400
    assert "container: expected one of" in (await bad.json())["error"]


@pytest.mark.parametrize("version", ["REL-5-MM7-1-0", "REL-5-MM7-1-1"])
async def test_admin_deliver_in_rel_5_mm7_1_0_carries_a_reply_charging_id(
    mock: MockFactory, vasp: tuple[Vasp, str], version: str
) -> None:
    # Those schemas require ReplyChargingID; MMSCs of that release sent their own ID of
    # the MM there. The bytes on the wire must validate against the official XSD.
    shared_mm7_path()
    receiver, url = vasp
    client = await mock(vasp_url=url)
    payload = {"from": "+15550009999", "to": "12345", "text": "hi", "version": version}
    payload["media"] = [{"fixture": "tiny.gif"}]
    answer = await (await client.post("/admin/deliver", json=payload)).json()
    assert answer["delivered"] is True, answer
    (deliver,) = receiver.received
    assert isinstance(deliver, DeliverReq)
    assert deliver.version == version
    assert deliver.reply_charging_id
    content_type, body = receiver.raw[0]
    _, element = envelope_parts(soap_part(content_type, body))
    assert validate(version, element) == []
    # A given ID is sent as is; later releases get none unless asked.
    await client.post("/admin/deliver", json={**payload, "reply_charging_id": "rc-7"})
    assert receiver.received[-1].reply_charging_id == "rc-7"
    await client.post("/admin/deliver", json={**payload, "version": "REL-6-MM7-1-4"})
    assert receiver.received[-1].reply_charging_id is None


async def test_admin_deliver_in_a_container_and_with_vasp_failure(
    mock: MockFactory, vasp: tuple[Vasp, str]
) -> None:
    receiver, url = vasp
    receiver.script = [500]
    client = await mock(vasp_url=url)
    payload = {
        "from": "+15550009999",
        "to": ["+15550001111"],
        "media": [{"fixture": "card.vcf"}, {"fixture": "tiny.gif"}],
        "container": "multipart/related",
        "version": "REL-6-MM7-1-2",
    }
    refused = await (await client.post("/admin/deliver", json=payload)).json()
    assert refused["delivered"] is False
    assert refused["http_status"] == 500
    answer = await (await client.post("/admin/deliver", json=payload)).json()
    assert answer["delivered"] is True
    deliver = receiver.received[-1]
    assert deliver.version == "REL-6-MM7-1-2"
    (container,) = deliver.attachments
    assert container.media_type == "multipart/related"
    assert [p.media_type for p in container.parts] == ["text/x-vcard", "image/gif"]


@pytest.mark.parametrize(
    ("payload", "status", "fragment"),
    [
        ({"to": "123"}, 400, "from"),
        ({"from": "+1", "to": "123", "media": [{"fixture": "../secret"}]}, 400, "plain file"),
        ({"from": "+1", "to": "123", "media": [{"fixture": "missing.jpg"}]}, 400, "missing"),
        (
            {"from": "+1", "to": "123", "media": [{"content_type": "a/b", "data": "!"}]},
            400,
            "base64",
        ),
        ({"from": "+1", "to": "123", "version": "REL-9"}, 400, "version"),
    ],
)
async def test_admin_deliver_validation(
    mock: MockFactory, vasp: tuple[Vasp, str], payload: dict[str, Any], status: int, fragment: str
) -> None:
    client = await mock(vasp_url=vasp[1])
    response = await client.post("/admin/deliver", json=payload)
    assert response.status == status
    assert fragment in (await response.json())["error"]


async def test_admin_deliver_without_vasp_url(mock: MockFactory) -> None:
    client = await mock()
    response = await client.post("/admin/deliver", json={"from": "+1", "to": "123"})
    assert response.status == 409


async def test_admin_read_reply(mock: MockFactory, vasp: tuple[Vasp, str]) -> None:
    receiver, url = vasp
    client = await mock(vasp_url=url)
    response = await client.post(
        "/admin/read-reply",
        json={"message_id": "m-42", "from": "+15550001", "to": "12345", "status": "Read"},
    )
    answer = await response.json()
    assert answer["delivered"] is True
    (reply,) = receiver.received
    assert isinstance(reply, ReadReplyReq)
    assert reply.message_id == "m-42"
    assert reply.mm_status == "Read"
    assert reply.sender == Address.number("+15550001")
    assert reply.recipient == Address.short_code("12345")


async def test_admin_stats_reset_and_metrics(mock: MockFactory) -> None:
    client = await mock(fail_rate=((3000, 0.5),), seed=3)
    for _ in range(10):
        await post_mm7(client, submit())
    stats = await (await client.get("/admin/stats")).json()
    submits = stats["requests"]["SubmitReq"]
    assert sum(submits.values()) == 10
    assert submits["1000"] > 0
    assert submits["3000"] > 0
    assert sum(stats["submit_rate"]["per_second"]) == submits["1000"]
    assert stats["scenarios"] == ["status", "happy"]
    assert len(stats["last_messages"]) == 10
    assert stats["last_messages"][0]["type"] == "SubmitReq"
    metrics = await (await client.get("/metrics")).text()
    assert (
        f'mm7mock_requests_total{{outcome="1000",type="SubmitReq"}} {submits["1000"]}.0' in metrics
    )
    assert "mm7mock_request_duration_seconds_count 10.0" in metrics
    assert (await client.post("/admin/reset")).status == 200
    stats = await (await client.get("/admin/stats")).json()
    assert stats["requests"] == {}
    assert stats["last_messages"] == []


async def test_admin_config_changes_faults_at_runtime(mock: MockFactory) -> None:
    client = await mock()
    response = await client.post("/admin/config", json={"fail_rate": "4006=1.0"})
    assert response.status == 200
    assert (await response.json())["fail_rate"] == {"4006": 1.0}
    _, rsp, _ = await post_mm7(client, submit())
    assert isinstance(rsp, RSErrorRsp)
    assert rsp.status_code == 4006
    response = await client.post("/admin/config", json={"fail_rate": [[3000, 1.0]]})
    _, rsp, _ = await post_mm7(client, submit())
    assert rsp is not None
    assert rsp.status_code == 3000
    response = await client.post("/admin/config", json={"fail_rate": {}, "latency": "1,0"})
    assert response.status == 200
    _, rsp, _ = await post_mm7(client, submit())
    assert rsp is not None
    assert rsp.status_code == 1000
    bad = await client.post("/admin/config", json={"fail_rat": "1"})
    assert bad.status == 400
    assert (await bad.json())["key"] == "fail_rat"
    fixed = await client.post("/admin/config", json={"listen": "127.0.0.1:1"})
    assert fixed.status == 400
    assert "while running" in (await fixed.json())["error"]
    shown = await (await client.get("/admin/config")).json()
    assert "password" not in shown
    assert shown["latency_ms"] == 1.0


# -- record dir ---------------------------------------------------------------------


async def test_record_dir_holds_raw_exchanges(
    mock: MockFactory, vasp: tuple[Vasp, str], tmp_path: Path
) -> None:
    receiver, url = vasp
    client = await mock(record=tmp_path / "rec", vasp_url=url, dr_delay=0.0)
    _, rsp, _ = await post_mm7(client, submit(tid="rec-1"))
    await receiver.wait_for(1)
    await asyncio.sleep(0.1)
    names = sorted(p.name for p in (tmp_path / "rec").iterdir())
    assert names[:2] == ["000001-in-request.http", "000001-in-response.http"]
    assert "000002-out-request.http" in names
    assert "000002-out-response.http" in names
    request = (tmp_path / "rec" / "000001-in-request.http").read_bytes()
    assert request.startswith(b"POST /mm7 HTTP/1.1\r\n")
    head, _, body = request.partition(b"\r\n\r\n")
    assert b"Content-Type: multipart/related" in head
    assert isinstance(protocol.decode(body, _header(head, b"Content-Type")), SubmitReq)
    response = (tmp_path / "rec" / "000001-in-response.http").read_bytes()
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    head, _, body = response.partition(b"\r\n\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    assert isinstance(rsp, SubmitRsp)
    assert rsp.message_id is not None
    assert rsp.message_id.encode() in body


def _header(head: bytes, name: bytes) -> str:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower():
            return value.strip().decode()
    raise AssertionError(f"no {name!r} header")


# -- third-party samples ------------------------------------------------------------


def _accepted_submit_samples() -> list[str]:
    index = SAMPLES / "INDEX.json"
    if not index.is_file():
        return []
    entries = json.loads(index.read_text())
    return [
        e["file"]
        for e in entries
        if e["message"] == "SubmitReq"
        and str(e.get("tolerant_parser_expectation", "")).startswith("accept")
    ]


def split_capture(raw: bytes) -> tuple[str | None, bytes]:
    """(Content-Type, body) of a capture: a whole HTTP request or a bare body.

    A bare MIME body gets the Content-Type a VASP would have sent with it.
    """
    if not raw.startswith((b"POST ", b"HTTP/")):
        for line in raw.splitlines():
            if line.startswith(b"--") and len(line.strip()) > 2:
                boundary = line.strip()[2:].decode("latin-1")
                return f'multipart/related; boundary="{boundary}"; type="text/xml"', raw
        return "text/xml", raw
    sep = b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n"
    head, _, body = raw.partition(sep)
    for line in head.splitlines()[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-type":
            return value.strip().decode("latin-1"), body
    return None, body


@pytest.mark.parametrize("name", _accepted_submit_samples() or ["(samples absent)"])
async def test_accepts_vendor_submit_samples(mock: MockFactory, name: str) -> None:
    if not (SAMPLES / name).is_file():
        pytest.skip(f"shared MM7 samples not found at {SAMPLES}")
    content_type, body = split_capture((SAMPLES / name).read_bytes())
    client = await mock()
    response, rsp, _ = await post_mm7(client, (content_type or "application/octet-stream", body))
    assert response.status == 200, rsp
    assert isinstance(rsp, SubmitRsp)
    assert rsp.status_code == 1000
    assert rsp.message_id


async def test_reset_replays_the_seeded_sequence(mock: MockFactory) -> None:
    client = await mock(seed=5, fail_rate=((3000, 0.5),))

    async def codes() -> list[int]:
        out = []
        for _ in range(12):
            _, rsp, _ = await post_mm7(client, submit())
            assert rsp is not None
            out.append(rsp.status_code)
        return out

    first = await codes()
    assert (await client.post("/admin/reset")).status == 200
    assert await codes() == first
    assert set(first) == {1000, 3000}
