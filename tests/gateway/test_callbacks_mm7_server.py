"""The MM7 listener over loopback HTTP: auth, allow-lists, faults, answering in the peer's version."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import pytest
from lxml import etree

from protocol import (
    Address,
    DeliverReq,
    DeliveryReportReq,
    DeliveryReportRsp,
    ReadReplyReq,
    Recipients,
    SenderIdentification,
    SubmitReq,
    VASPErrorRsp,
    decode,
    encode,
)
from tests.gateway.callback_helpers import (
    basic,
    build_config,
    delivery_report,
    post_mm7,
    running,
)

TO = "+821012345678"


def root_namespace(body: bytes) -> str:
    envelope = etree.fromstring(body)
    element = envelope.find("{*}Body")[0]
    if element.tag.endswith("Fault"):
        element = element.find("detail")[0]
    return etree.QName(element).namespace


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("mmsc", "wrong"),
        basic("other", "mmsc-secret"),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Bearer abc"},
    ],
)
async def test_bad_or_missing_credentials_get_401(tmp_path, mmsc, headers):
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        status, _, response_headers = await post_mm7(
            s, gw, delivery_report("m", TO, "Retrieved"), headers=headers
        )
        assert status == 401
        assert response_headers["WWW-Authenticate"].startswith("Basic ")
        assert await gw.store.report_counts() == {}


async def test_named_path_and_unknown_mmsc(tmp_path, mmsc):
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        report = delivery_report("m", TO, "Retrieved")
        status, _, _ = await post_mm7(s, gw, report, path="/mm7/mock")
        assert status == 200
        status, _, _ = await post_mm7(s, gw, report, path="/mm7/nobody")
        assert status == 404


async def test_source_address_allow_list(tmp_path, mmsc):
    refused = build_config(tmp_path / "a", mmsc.url, mmsc={"inbound_allow_ips": ["10.0.0.0/8"]})
    async with running(refused) as gw, aiohttp.ClientSession() as s:
        status, _, _ = await post_mm7(s, gw, delivery_report("m", TO, "Retrieved"))
        assert status == 403
    allowed = build_config(tmp_path / "b", mmsc.url, mmsc={"inbound_allow_ips": ["127.0.0.0/8"]})
    async with running(allowed) as gw, aiohttp.ClientSession() as s:
        status, _, _ = await post_mm7(s, gw, delivery_report("m", TO, "Retrieved"))
        assert status == 200


async def test_mmsc_without_inbound_credentials_is_open(tmp_path, mmsc):
    config = build_config(
        tmp_path, mmsc.url, mmsc={"inbound_username": None, "inbound_password": None}
    )
    async with running(config) as gw, aiohttp.ClientSession() as s:
        status, _, _ = await post_mm7(s, gw, delivery_report("m", TO, "Retrieved"), headers={})
        assert status == 200


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"<not-xml", "text/xml", 2007),
        (b"", "text/xml", 2007),
        (b"--b\r\nContent-Type: text/xml\r\n\r\n<x/>", 'multipart/related; boundary="b"', 2007),
        (
            (
                b'<?xml version="1.0"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">'
                b"<env:Body><Nonsense/></env:Body></env:Envelope>"
            ),
            "text/xml",
            4003,
        ),
    ],
)
async def test_malformed_bodies_get_a_fault_with_the_decoder_status(
    tmp_path, mmsc, body, content_type, code
):
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        status, answer_body, _ = await post_mm7(s, gw, (content_type, body))
        assert status == 500
        answer = decode(answer_body)
        assert isinstance(answer, VASPErrorRsp)
        assert answer.status_code == code
        # No peer version could be read: the MMSC's configured version is used.
        assert root_namespace(answer_body).endswith("REL-6-MM7-1-4")


async def test_unsupported_operation_gets_4003(tmp_path, mmsc):
    request = SubmitReq(
        transaction_id="sub-1",
        sender_identification=SenderIdentification(vasp_id="v"),
        recipients=Recipients(to=(Address.number(TO),)),
    )
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        status, body, _ = await post_mm7(s, gw, request, version="REL-5-MM7-1-3")
        assert status == 500
        answer = decode(body)
        assert isinstance(answer, VASPErrorRsp)
        assert answer.status_code == 4003
        assert answer.transaction_id == "sub-1"
        assert root_namespace(body).endswith("REL-5-MM7-1-3")


@pytest.mark.parametrize("version", ["REL-5-MM7-1-0", "REL-5-MM7-1-2", "REL-6-MM7-1-1"])
async def test_answers_in_the_peers_own_version(tmp_path, mmsc, version):
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        status, body, _ = await post_mm7(
            s, gw, delivery_report("m", "821012345678", "Retrieved"), version=version
        )
        assert status == 200
        assert root_namespace(body).endswith(version)
        answer = decode(body)
        assert isinstance(answer, DeliveryReportRsp)
        assert answer.status_code == 1000


async def test_unknown_namespace_gets_the_configured_version(tmp_path, mmsc):
    _, body = encode(delivery_report("m", TO, "Retrieved"), "REL-6-MM7-1-4")
    odd = body.replace(b"REL-6-MM7-1-4", b"REL-6-MM7-6-7")
    config = build_config(tmp_path, mmsc.url, mmsc={"version": "REL-5-MM7-1-3"})
    async with running(config) as gw, aiohttp.ClientSession() as s:
        status, answer_body, _ = await post_mm7(s, gw, ("text/xml", odd))
        assert status == 200
        assert root_namespace(answer_body).endswith("REL-5-MM7-1-3")
        leniencies = [
            m
            for m in gw.registry.collect()
            if m.name == "mm7gw_decode_leniencies"
            for sample in m.samples
            if sample.value > 0
        ]
        assert leniencies, "the guessed namespace is counted as a leniency"


def without(message, *names: str) -> tuple[str, bytes]:
    """``message`` encoded, then its elements called ``names`` removed (the encoder refuses
    to emit such a message, as it should)."""
    content_type, body = encode(message, "REL-6-MM7-1-4")
    envelope = etree.fromstring(body)
    for name in names:
        for element in envelope.iter(f"{{*}}{name}"):
            element.getparent().remove(element)
    return content_type, etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


WHEN = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
REPORT = DeliveryReportReq(
    transaction_id="dr-1",
    date=WHEN,
    message_id="m-1",
    mm_status="Retrieved",
    recipient=Address.number(TO),
    sender=Address.short_code("12345"),
)
READ = ReadReplyReq(
    transaction_id="rr-1",
    time_stamp=WHEN,
    message_id="m-1",
    mm_status="Read",
    recipient=Address.number(TO),
    sender=Address.short_code("12345"),
)
DELIVER = DeliverReq(
    transaction_id="dl-1",
    sender=Address.number(TO),
    recipients=Recipients(to=(Address.short_code("12345"),)),
)


@pytest.mark.parametrize(
    ("message", "removed", "missing"),
    [
        (REPORT, ("MessageID",), "MessageID"),
        (REPORT, ("MMStatus",), "MMStatus"),
        (REPORT, ("Recipient", "Sender"), "Recipient"),
        (READ, ("MessageID",), "MessageID"),
    ],
)
async def test_callbacks_missing_mandatory_elements_get_4004(
    tmp_path, mmsc, message, removed, missing
):
    def count(conn):
        return conn.execute(
            "SELECT (SELECT COUNT(*) FROM delivery_reports)"
            " + (SELECT COUNT(*) FROM inbound_messages)"
        ).fetchone()[0]

    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        before = await gw.store.read(count)
        status, body, _ = await post_mm7(s, gw, without(message, *removed))
        assert status == 500
        answer = decode(body)
        assert isinstance(answer, VASPErrorRsp)
        assert answer.status_code == 4004
        assert missing in (answer.status_text or "")
        assert answer.transaction_id == message.transaction_id
        assert await gw.store.read(count) == before, "a refused callback was stored"


async def test_deliver_without_sender_is_accepted_and_stored(tmp_path, mmsc):
    """Sender is mandatory, but one MMSC omits it: keep the message rather than lose it."""
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        status, body, _ = await post_mm7(s, gw, without(DELIVER, "Sender"))
        assert status == 200
        assert decode(body).status_code == 1000
        rows = await gw.store.read(
            lambda c: c.execute("SELECT sender, recipient FROM inbound_messages").fetchall()
        )
        assert rows == [(None, "12345")]
