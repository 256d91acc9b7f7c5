"""Everything we encode validates against the official XSD of the target version.

Every message type x every schema version, fully populated with realistic values; then
the per-version rules the encoder must enforce (fields a version lacks, required
elements, ``+`` in Number, ``mustUnderstand``, MM7Version values).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from lxml import etree

from protocol import (
    VERSIONS,
    Address,
    AddressCoding,
    CancelReq,
    DeliverReq,
    DeliveryReportReq,
    DeliveryReportRsp,
    EncodeError,
    ExtendedCancelReq,
    ExtendedCancelRsp,
    Message,
    Recipients,
    RSErrorRsp,
    SenderIdentification,
    SubmitReq,
    SubmitRsp,
    UACapabilities,
    UnsupportedVersion,
    encode,
)
from protocol.layouts import LAYOUTS
from protocol.messages import MESSAGE_TYPES
from protocol.versions import MM7_VERSION_VALUES, namespace_for
from tests.conftest import shared_mm7_path
from tests.protocol.specimens import full_message
from tests.protocol.xsd import SOAP_ENV, envelope_parts, envelope_schema, soap_part, validate

CASES = [(version, tag) for version in VERSIONS for tag in LAYOUTS[version]]


@pytest.fixture(autouse=True)
def _schemas() -> None:
    shared_mm7_path()


def _encoded(
    message: Message, version: str, **kwargs: str
) -> tuple[str, etree._Element, etree._Element, bytes]:
    content_type, body = encode(message, version, **kwargs)
    xml = soap_part(content_type, body)
    transaction, element = envelope_parts(xml)
    return content_type, transaction, element, xml


def _assert_valid(version: str, transaction: etree._Element, element: etree._Element) -> None:
    assert validate(version, element) == []
    assert validate(version, transaction) == []


@pytest.mark.parametrize(("version", "tag"), CASES)
def test_fully_populated_message_validates(version: str, tag: str) -> None:
    message = full_message(MESSAGE_TYPES[tag], version)
    _, transaction, element, xml = _encoded(message, version)
    assert element.tag == "{" + namespace_for(version) + "}" + tag
    _assert_valid(version, transaction, element)
    # The SOAP 1.1 envelope itself is valid too (Body content is lax there).
    assert envelope_schema().validate(etree.fromstring(xml)), envelope_schema().error_log
    # Every element the version defines for this message was emitted.
    emitted = {etree.QName(child).localname for child in element}
    defined = {name for name, _ in LAYOUTS[version][tag]}
    assert emitted == defined - _aliases_unused(tag, version)


def _aliases_unused(tag: str, version: str) -> set[str]:
    """Elements that share a field with another element of the same layout (none today)."""
    cls = MESSAGE_TYPES[tag]
    seen: dict[str, str] = {}
    unused: set[str] = set()
    for element, _ in LAYOUTS[version][tag]:
        attr = cls.ELEMENTS[element][0]
        if attr in seen:
            unused.add(element)
        seen[attr] = element
    return unused


@pytest.mark.parametrize(
    ("version", "tag"), [(v, t) for v, t in CASES if "Content" in dict(LAYOUTS[v][t])]
)
def test_base64_attachments_validate_too(version: str, tag: str) -> None:
    message = full_message(MESSAGE_TYPES[tag], version)
    assert message.attachments
    content_type, transaction, element, _ = _encoded(message, version, transfer_encoding="base64")
    assert content_type.startswith("multipart/related;")
    _assert_valid(version, transaction, element)


@pytest.mark.parametrize(("version", "tag"), CASES)
def test_minimal_message_validates(version: str, tag: str) -> None:
    full = full_message(MESSAGE_TYPES[tag], version, with_attachments=False)
    # Keep only what the layout requires (plus what the encoder fills in itself).
    required = {MESSAGE_TYPES[tag].ELEMENTS[e][0] for e, req in LAYOUTS[version][tag] if req}
    defaults = {f.name: f for f in dataclasses.fields(full)}
    changes = {}
    for name, field in defaults.items():
        if name in required or name in ("transaction_id", "status_code"):
            continue
        if field.default is not dataclasses.MISSING:
            changes[name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            changes[name] = field.default_factory()
    minimal = dataclasses.replace(full, **changes)
    content_type, transaction, element, _ = _encoded(minimal, version)
    assert content_type == "text/xml; charset=utf-8"
    _assert_valid(version, transaction, element)


@pytest.mark.parametrize("version", VERSIONS)
def test_mm7_version_defaults_to_newest_value_of_the_schema(version: str) -> None:
    _, _, element, _ = _encoded(DeliveryReportRsp(transaction_id="t1"), version)
    assert element[0].text == MM7_VERSION_VALUES[version][0]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_allowed_mm7_version_value_validates(version: str) -> None:
    for value in MM7_VERSION_VALUES[version]:
        message = DeliveryReportRsp(transaction_id="t1", mm7_version=value)
        _, transaction, element, _ = _encoded(message, version)
        assert element[0].text == value
        _assert_valid(version, transaction, element)


@pytest.mark.parametrize("version", VERSIONS)
def test_must_understand_only_where_the_schema_allows_it(version: str) -> None:
    _, transaction, _, _ = _encoded(DeliveryReportRsp(transaction_id="t1"), version)
    must = transaction.get(SOAP_ENV + "mustUnderstand")
    if version in ("REL-5-MM7-1-0", "REL-5-MM7-1-1"):
        assert must is None
    else:
        assert must == "1"


@pytest.mark.parametrize("version", VERSIONS)
def test_plus_in_number_kept_from_rel5_1_2_and_stripped_before(version: str) -> None:
    message = DeliveryReportReq(
        transaction_id="t1",
        message_id="m1",
        recipient=Address.number("+821056610926"),
        sender=Address.short_code("7777"),
        date=datetime(2024, 7, 4, tzinfo=UTC),
        mm_status="Retrieved",
    )
    _, transaction, element, _ = _encoded(message, version)
    numbers = [e.text for e in element.iter("{*}Number")]
    if version in ("REL-5-MM7-1-0", "REL-5-MM7-1-1"):
        assert numbers == ["821056610926"]
    else:
        assert numbers == ["+821056610926"]
    _assert_valid(version, transaction, element)


@pytest.mark.parametrize("version", ["REL-5-MM7-1-0", "REL-5-MM7-1-1"])
def test_legacy_versions_refuse_values_that_are_not_nmtokens(version: str) -> None:
    with pytest.raises(EncodeError, match="NMTOKEN"):
        encode(DeliveryReportRsp(transaction_id="has space"), version)
    bad_number = DeliveryReportReq(
        transaction_id="t1",
        message_id="m1",
        recipient=Address.number("+82 10 5661"),
        sender=Address.short_code("7777"),
        date=datetime(2024, 7, 4, tzinfo=UTC),
        mm_status="Retrieved",
    )
    with pytest.raises(EncodeError, match="not valid"):
        encode(bad_number, version)
    with pytest.raises(EncodeError, match="MessageID 'id 1' is not an xs:NMTOKEN"):
        encode(
            dataclasses.replace(bad_number, recipient=Address.number("1"), message_id="id 1"),
            version,
        )
    with pytest.raises(EncodeError, match="VASPID"):
        encode(
            CancelReq(
                transaction_id="t1",
                message_id="m1",
                sender_identification=SenderIdentification(vasp_id="a b"),
            ),
            version,
        )


def test_field_missing_from_the_version_is_refused() -> None:
    message = full_message(SubmitReq, "REL-6-MM7-1-4", with_attachments=False)
    assert isinstance(message, SubmitReq)
    with pytest.raises(EncodeError, match="ApplicID"):
        encode(message, "REL-6-MM7-1-3")
    deliver = full_message(DeliverReq, "REL-6-MM7-1-4", with_attachments=False)
    with pytest.raises(EncodeError, match="not defined"):
        encode(deliver, "REL-5-MM7-1-4")
    with_caps = DeliverReq(
        transaction_id="t1",
        sender=Address.number("+1555"),
        ua_capabilities=UACapabilities(ua_prof="x"),
    )
    with pytest.raises(EncodeError, match="UACapabilities"):
        encode(with_caps, "REL-6-MM7-1-3")


@pytest.mark.parametrize("version", [v for v in VERSIONS if v != "REL-6-MM7-1-4"])
def test_extended_messages_exist_only_in_rel6_1_4(version: str) -> None:
    with pytest.raises(EncodeError, match="does not exist"):
        encode(
            ExtendedCancelReq(
                transaction_id="t1",
                sender_identification=SenderIdentification(vasp_id="v"),
                cancel_id="c1",
            ),
            version,
        )


def test_extended_cancel_rsp_status_holds_only_a_code() -> None:
    with pytest.raises(EncodeError, match="only a StatusCode"):
        encode(ExtendedCancelRsp(transaction_id="t1", status_text="OK"), "REL-6-MM7-1-4")


def test_submit_rsp_message_id_is_not_in_rel5_1_0() -> None:
    # REL-5-MM7-1-0's SubmitRsp has no MessageID element (added in REL-5-MM7-1-1).
    with pytest.raises(EncodeError, match="not defined"):
        encode(SubmitRsp(transaction_id="t1", message_id="m1"), "REL-5-MM7-1-0")
    _, transaction, element, _ = _encoded(SubmitRsp(transaction_id="t1"), "REL-5-MM7-1-0")
    _assert_valid("REL-5-MM7-1-0", transaction, element)


def test_missing_required_elements_are_refused() -> None:
    with pytest.raises(EncodeError, match="MessageID is required"):
        encode(SubmitRsp(transaction_id="t1"), "REL-6-MM7-1-4")
    with pytest.raises(EncodeError, match="Sender is required"):
        encode(DeliverReq(transaction_id="t1"), "REL-6-MM7-1-4")
    with pytest.raises(EncodeError, match="ReplyChargingID is required"):
        encode(DeliverReq(transaction_id="t1", sender=Address.number("1555")), "REL-5-MM7-1-0")
    with pytest.raises(EncodeError, match="MessageID is required"):
        encode(CancelReq(transaction_id="t1"), "REL-5-MM7-1-3")
    with pytest.raises(EncodeError, match="at least one"):
        encode(SubmitReq(transaction_id="t1", recipients=Recipients()), "REL-6-MM7-1-4")
    with pytest.raises(EncodeError, match="transaction_id"):
        encode(SubmitRsp(message_id="m1"), "REL-6-MM7-1-4")


def test_address_security_attributes_only_in_rel6() -> None:
    message = DeliveryReportReq(
        transaction_id="t1",
        message_id="m1",
        recipient=Address(value="+1555", address_coding=AddressCoding.ENCRYPTED),
        sender=Address.short_code("7777"),
        date=datetime(2024, 7, 4, tzinfo=UTC),
        mm_status="Retrieved",
    )
    with pytest.raises(EncodeError, match="addressCoding"):
        encode(message, "REL-5-MM7-1-4")
    _, transaction, element, _ = _encoded(message, "REL-6-MM7-1-0")
    _assert_valid("REL-6-MM7-1-0", transaction, element)


def test_unknown_version_is_refused() -> None:
    with pytest.raises(UnsupportedVersion):
        encode(SubmitRsp(transaction_id="t1", message_id="m1"), "REL-7-MM7-1-0")


def test_error_response_is_carried_in_a_fault() -> None:
    _, body = encode(RSErrorRsp(transaction_id="t1", status_code=2007), "REL-6-MM7-1-4")
    root = etree.fromstring(body)
    fault = root.find(f"{SOAP_ENV}Body/{SOAP_ENV}Fault")
    assert fault is not None
    assert fault.findtext("faultcode") == "env:Client"
    assert fault.findtext("faultstring") == "Message format corrupt"
    assert envelope_schema().validate(root)
    _, server = encode(RSErrorRsp(transaction_id="t1", status_code=3001), "REL-6-MM7-1-4")
    assert b"<faultcode>env:Server</faultcode>" in server


def test_multipart_framing_names_the_soap_part() -> None:
    message = full_message(SubmitReq, "REL-6-MM7-1-4")
    content_type, body = encode(message, "REL-6-MM7-1-4")
    assert 'type="text/xml"' in content_type
    assert 'start="<mm7-soap@mm7-gateway>"' in content_type
    assert body.endswith(b"--\r\n")
    # soap_part finds the SOAP part through ``start`` with the stdlib parser.
    assert soap_part(content_type, body).startswith(b"<?xml")
