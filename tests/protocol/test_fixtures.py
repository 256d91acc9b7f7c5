"""Our own hand-written MM7 fixtures (fixtures/mm7) decode as documented in fixtures/README.md."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from protocol import (
    Address,
    DeliverReq,
    DeliveryReportReq,
    Message,
    ReadReplyReq,
    RetryClass,
    RSErrorRsp,
    SubmitReq,
    decode,
    resolve_href,
    retry_class,
)
from protocol.capture import split_http_message
from tests.conftest import FIXTURES, shared_mm7_path
from tests.protocol.xsd import envelope_parts, soap_part, validate

MM7 = FIXTURES / "mm7"


def load(name: str) -> tuple[str | None, Message]:
    start, headers, body = split_http_message((MM7 / name).read_bytes())
    return start, decode(body, headers.get("content-type"))


def test_every_fixture_is_documented() -> None:
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    files = sorted(p.name for p in MM7.iterdir())
    assert files
    for name in files:
        assert f"`{name}`" in readme


def test_submit_req_with_smil_presentation() -> None:
    start, message = load("submit_req_rel6_14.http")
    assert start == "POST /mm7 HTTP/1.1"
    assert isinstance(message, SubmitReq)
    assert (message.version, message.transaction_id, message.leniencies) == (
        "REL-6-MM7-1-4",
        "fx-submit-0001",
        (),
    )
    assert message.recipients.to == (Address.number("+15550100001"),)
    assert message.recipients.cc == (Address.rfc2822("ops@example.com", display_only=True),)
    assert message.expiry_date == "P2D"
    assert message.time_stamp == datetime(2025, 3, 1, 8, tzinfo=UTC)
    assert message.content is not None
    presentation = resolve_href(message.content.href, message.attachments)
    assert presentation is not None
    assert presentation.media_type == "multipart/related"
    smil, gif, text = presentation.parts
    assert smil.media_type == "application/smil"
    assert gif.data.startswith(b"GIF89a")
    assert gif.content_location == "sun.gif"
    assert text.data.decode() == "Tomorrow: sunny, 21 °C."


def test_deliver_req_with_base64_and_bracketless_ids() -> None:
    _, message = load("deliver_req_base64.http")
    assert isinstance(message, DeliverReq)
    assert message.version == "REL-5-MM7-1-2"
    assert message.sender == Address.number("+15550100002")
    assert message.content is not None
    picture = resolve_href(message.content.href, message.attachments)
    assert picture is not None
    assert picture.data.startswith(b"GIF89a")
    assert {"content_id_without_brackets", "unqualified_children"} <= set(message.leniencies)
    assert "missing_start" not in message.leniencies


def test_delivery_report_bare_soap() -> None:
    _, message = load("delivery_report_req_bare_soap.http")
    assert isinstance(message, DeliveryReportReq)
    assert (message.message_id, message.mm_status) == ("mmsc-msg-000123", "Retrieved")
    assert message.date == datetime(2025, 3, 1, 8, 0, 42, tzinfo=UTC)
    assert message.leniencies == ()


def test_fault_4006_over_http_500() -> None:
    start, message = load("submit_rsp_4006.http")
    assert start == "HTTP/1.1 500 Internal Server Error"
    assert isinstance(message, RSErrorRsp)
    assert (message.status_code, message.details) == (4006, "throttled: 50 tps exceeded")
    assert message.fault_code == "soap:Server"
    assert retry_class(message.status_code) is RetryClass.RETRY_SLOW_DOWN


def test_read_reply_rel5_1_0_without_headers() -> None:
    start, message = load("read_reply_req_rel5_10.xml")
    assert start is None
    assert isinstance(message, ReadReplyReq)
    assert (message.version, message.mm_status) == ("REL-5-MM7-1-0", "Read")
    assert message.leniencies == ("no_content_type",)


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("submit_req_rel6_14.http", "REL-6-MM7-1-4"),
        ("delivery_report_req_bare_soap.http", "REL-6-MM7-1-4"),
        ("submit_rsp_4006.http", "REL-6-MM7-1-4"),
        ("read_reply_req_rel5_10.xml", "REL-5-MM7-1-0"),
    ],
)
def test_schema_clean_fixtures_validate(name: str, version: str) -> None:
    shared_mm7_path()
    _, headers, body = split_http_message((MM7 / name).read_bytes())
    transaction, element = envelope_parts(soap_part(headers.get("content-type", "text/xml"), body))
    assert validate(version, element) == []
    assert validate(version, transaction) == []
