"""Property: decode(encode(m, v)) == m for generated messages of every type and version."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    VERSIONS,
    Address,
    Attachment,
    ContentReference,
    DeliverReq,
    DeliveryReportRsp,
    Message,
    Recipients,
    RSErrorRsp,
    SubmitReq,
    decode,
    encode,
)
from protocol.layouts import LAYOUTS
from protocol.status import status_name
from tests.protocol.strategies import messages, versioned_messages

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def roundtrip(message: Message, version: str, transfer_encoding: str = "binary") -> Message:
    content_type, body = encode(message, version, transfer_encoding=transfer_encoding)
    decoded = decode(body, content_type)
    assert decoded.version == version
    return decoded


@SETTINGS
@given(versioned_messages(), st.sampled_from(["binary", "base64"]))
def test_roundtrip_any_message(case: tuple[str, Message], transfer_encoding: str) -> None:
    version, message = case
    decoded = roundtrip(message, version, transfer_encoding)
    assert decoded == message
    assert type(decoded) is type(message)
    # A message we built ourselves needs no tolerance beyond extension elements.
    assert set(decoded.leniencies) <= {"extension_element", "unqualified_children"}


@pytest.mark.parametrize("version", VERSIONS)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_roundtrip_every_type_of_each_version(version: str, data: st.DataObject) -> None:
    for tag in sorted(LAYOUTS[version]):
        message = data.draw(messages(version, tag), label=tag)
        assert roundtrip(message, version) == message


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages("REL-6-MM7-1-4", "SubmitReq"))
def test_attachment_bytes_survive_both_encodings(message: Message) -> None:
    for transfer_encoding in ("binary", "base64"):
        decoded = roundtrip(message, "REL-6-MM7-1-4", transfer_encoding)
        assert [p.data for a in decoded.attachments for p in a.walk()] == [
            p.data for a in message.attachments for p in a.walk()
        ]


def test_status_text_none_becomes_the_standard_name() -> None:
    message = DeliveryReportRsp(transaction_id="t1", mm7_version="6.8.0", status_code=4006)
    decoded = roundtrip(message, "REL-6-MM7-1-4")
    assert decoded != message
    assert decoded == dataclasses.replace(message, status_text=status_name(4006))
    assert decoded.status_text == "Service unavailable"  # type: ignore[attr-defined]


def test_fault_code_and_string_are_filled_in() -> None:
    decoded = roundtrip(RSErrorRsp(transaction_id="t1", status_code=2002), "REL-6-MM7-1-4")
    assert isinstance(decoded, RSErrorRsp)
    assert (decoded.fault_code, decoded.fault_string, decoded.status_text) == (
        "env:Client",
        "Address Error",
        "Address Error",
    )


def test_content_href_is_filled_from_the_first_attachment() -> None:
    message = DeliverReq(
        transaction_id="t1",
        mm7_version="6.8.0",
        sender=Address.number("+15551234"),
        attachments=(Attachment(content_type="image/gif", data=b"GIF89a", content_id="img@x"),),
    )
    decoded = roundtrip(message, "REL-6-MM7-1-4")
    assert isinstance(decoded, DeliverReq)
    assert decoded.content == ContentReference(href="cid:img@x")
    assert decoded == dataclasses.replace(message, content=decoded.content)


def test_legacy_versions_strip_plus_from_numbers() -> None:
    message = SubmitReq(
        transaction_id="t1",
        mm7_version="5.3.0",
        recipients=Recipients(to=(Address.number("+15551234"),)),
    )
    decoded = roundtrip(message, "REL-5-MM7-1-0")
    assert isinstance(decoded, SubmitReq)
    assert decoded.recipients.to == (Address.number("15551234"),)
    assert roundtrip(message, "REL-5-MM7-1-2") == message
