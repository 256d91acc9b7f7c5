"""zeep as an independent oracle, both ways.

1. zeep's XSD engine (loaded offline from the official schemas) parses the Body
   elements we encode, and reads the values we meant.
2. Values built and rendered by zeep, wrapped in a SOAP envelope, decode with our
   decoder into the fields zeep was given: every message type, in every version whose
   schema defines it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from lxml import etree

from protocol import (
    VERSIONS,
    Address,
    AddressKind,
    ContentReference,
    DeliverReq,
    DeliveryReportReq,
    Message,
    ReadReplyReq,
    Recipients,
    Response,
    RSErrorRsp,
    SenderIdentification,
    SubmitReq,
    SubmitRsp,
    VASPErrorRsp,
    decode,
    encode,
)
from protocol.layouts import LAYOUTS
from protocol.messages import MESSAGE_TYPES, Kind
from protocol.soap import SOAP_ENV_NS
from protocol.versions import LEGACY_VERSIONS, namespace_for
from tests.conftest import shared_mm7_path
from tests.protocol import zeep_oracle
from tests.protocol.specimens import full_message
from tests.protocol.xsd import envelope_parts, soap_part

CASES = [(version, tag) for version in VERSIONS for tag in LAYOUTS[version]]


@pytest.fixture(autouse=True)
def _schemas() -> None:
    shared_mm7_path()


# -- normalising zeep's view of an element ---------------------------------------------------


def _simple(value: Any) -> Any:
    """zeep wraps simple content with attributes as {'_value_1': ...}."""
    if hasattr(value, "_value_1") and not isinstance(value, list | str):
        return value["_value_1"]
    return value


def _zaddress(value: Any) -> tuple[str, str] | None:
    if value is None:
        return None
    if isinstance(value, str):  # SenderAddress is xs:string in REL-5-MM7-1-0/1-1
        return ("text", value)
    for kind in ("Number", "ShortCode", "RFC2822Address"):
        try:
            chosen = value[kind]
        except (KeyError, AttributeError):
            continue
        if chosen is not None:
            return (kind, _simple(chosen))
    raise AssertionError(f"no address in {value!r}")


def _zdate(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value  # a duration
    return value


def _address(address: Address | None, version: str, *, sender_address: bool = False) -> Any:
    if address is None:
        return None
    if sender_address and version in LEGACY_VERSIONS:
        return ("text", address.value)
    value = address.value
    if version in LEGACY_VERSIONS and address.kind is not AddressKind.RFC2822:
        value = value.lstrip("+")
    return (address.kind.value, value)


def _zrecipients(value: Any) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {"To": [], "Cc": [], "Bcc": []}
    for entry in value["_value_1"]:
        for group, found in groups.items():
            try:
                holder = entry[group]
            except (KeyError, AttributeError):
                continue
            if holder is not None:
                found.extend(_zaddress(a) for a in holder["_value_1"])
    return groups


def _recipients(value: Recipients, version: str) -> dict[str, list[Any]]:
    return {
        "To": [_address(a, version) for a in value.to],
        "Cc": [_address(a, version) for a in value.cc],
        "Bcc": [_address(a, version) for a in value.bcc],
    }


def expected_and_seen(message: Message, version: str, parsed: Any) -> list[tuple[str, Any, Any]]:
    """(element, what we meant, what zeep read) for every element our message sets."""
    cls = type(message)
    rows: list[tuple[str, Any, Any]] = []
    for element, _ in LAYOUTS[version][cls.TAG]:
        attr, kind = cls.ELEMENTS[element]
        seen = parsed[element]
        if kind is Kind.VERSION:
            rows.append((element, message.mm7_version or seen, seen))
            continue
        if kind is Kind.STATUS:
            assert isinstance(message, Response)
            rows.append((element, message.status_code, int(seen["StatusCode"])))
            if not cls.TAG.startswith("extended"):
                rows.append(("StatusText", message.status_text, seen["StatusText"]))
            continue
        ours = getattr(message, attr)
        if ours is None or ours == ():
            assert seen in (None, [], ()), f"{element}: zeep saw {seen!r} but we set nothing"
            continue
        if kind is Kind.TEXT:
            rows.append((element, ours, _simple(seen)))
        elif kind is Kind.BOOL:
            rows.append((element, ours, seen))
        elif kind is Kind.DATE:
            rows.append((element, ours, _zdate(seen)))
        elif kind is Kind.ADDRESS:
            rows.append((element, _address(ours, version), _zaddress(seen)))
        elif kind is Kind.RECIPIENTS:
            rows.append((element, _recipients(ours, version), _zrecipients(seen)))
        elif kind is Kind.SENDER_ID:
            rows.append(("VASPID", ours.vasp_id, seen["VASPID"]))
            rows.append(("VASID", ours.vas_id, seen["VASID"]))
            rows.append(
                (
                    "SenderAddress",
                    _address(ours.sender_address, version, sender_address=True),
                    _zaddress(seen["SenderAddress"]),
                )
            )
        elif kind is Kind.CONTENT:
            rows.append(
                (
                    element,
                    (ours.href, ours.allow_adaptations),
                    (seen["href"], seen["allowAdaptations"]),
                )
            )
        elif kind is Kind.REPLY_CHARGING:
            rows.append(
                (
                    element,
                    (ours.reply_charging_size, ours.reply_deadline),
                    (seen["replyChargingSize"], _zdate(seen["replyDeadline"])),
                )
            )
        elif kind is Kind.DELIVERY_CONDITION:
            dcs = seen.split() if isinstance(seen, str) else seen["DC"]
            rows.append((element, list(ours), [int(dc) for dc in dcs]))
        elif kind is Kind.UA_CAPABILITIES:
            rows.append(
                (
                    element,
                    (ours.ua_prof, ours.time_stamp),
                    (seen["UAProf"], _zdate(seen["TimeStamp"])),
                )
            )
        elif kind is Kind.PREVIOUSLY_SENT_BY:
            agents = seen["UserAgent"]
            rows.append(
                (
                    element,
                    [(_address(a.address, version), a.sequence) for a in ours],
                    [(_zaddress(a), a["sequence"]) for a in agents],
                )
            )
        elif kind is Kind.PREVIOUSLY_SENT_DATE:
            rows.append(
                (
                    element,
                    [(d.value, d.sequence) for d in ours],
                    [(_zdate(_simple(d)), d["sequence"]) for d in seen["DateTime"]],
                )
            )
        else:
            raise AssertionError(f"unhandled kind {kind}")
    return rows


@pytest.mark.parametrize(("version", "tag"), CASES)
def test_zeep_parses_what_we_encode(version: str, tag: str) -> None:
    message = full_message(MESSAGE_TYPES[tag], version)
    content_type, body = encode(message, version)
    _, element = envelope_parts(soap_part(content_type, body))
    schema = zeep_oracle.zeep_schema(version)
    parsed = zeep_oracle.element(version, tag).parse(element, schema)
    rows = expected_and_seen(message, version, parsed)
    assert len(rows) >= 2
    for name, ours, seen in rows:
        assert ours == seen, f"{version} {tag}.{name}: we encoded {ours!r}, zeep read {seen!r}"


# -- the other way: zeep renders, we decode --------------------------------------------------------


def render(
    version: str, tag: str, *, transaction_id: str = "zeep-1", fault: bool = False, **values: Any
) -> bytes:
    """A SOAP envelope whose Body element zeep rendered from ``values``."""
    ns = namespace_for(version)
    env = f"{{{SOAP_ENV_NS}}}"
    envelope = etree.Element(env + "Envelope", nsmap={"soap": SOAP_ENV_NS})
    header = etree.SubElement(envelope, env + "Header")
    etree.SubElement(header, f"{{{ns}}}TransactionID", nsmap={"mm7": ns}).text = transaction_id
    holder = etree.SubElement(envelope, env + "Body")
    if fault:
        holder = etree.SubElement(holder, env + "Fault")
        etree.SubElement(holder, "faultcode").text = "soap:Server"
        etree.SubElement(holder, "faultstring").text = "zeep fault"
        holder = etree.SubElement(holder, "detail")
    element = zeep_oracle.element(version, tag)
    element.render(holder, element(**values))
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def _z_number(value: str, **attrs: Any) -> dict[str, Any]:
    return {"Number": {"_value_1": value, **attrs}}


@pytest.mark.parametrize("version", ["REL-5-MM7-1-0", "REL-5-MM7-1-3", "REL-6-MM7-1-4"])
def test_we_decode_a_submit_req_zeep_rendered(version: str) -> None:
    legacy = version in LEGACY_VERSIONS
    number = "15551234" if legacy else "+15551234"
    sender_address: Any = "vasp@example.com" if legacy else {"ShortCode": {"_value_1": "7777"}}
    body = render(
        version,
        "SubmitReq",
        MM7Version="5.3.0",
        SenderIdentification={"VASPID": "vasp", "VASID": "svc", "SenderAddress": sender_address},
        Recipients={
            "_value_1": [
                {
                    "To": {
                        "_value_1": [
                            _z_number(number),
                            {"RFC2822Address": {"_value_1": "a@b.example", "displayOnly": True}},
                        ]
                    }
                },
                {"Bcc": {"_value_1": [{"ShortCode": {"_value_1": "1234"}}]}},
            ]
        },
        ServiceCode={"_value_1": "SC-1"},
        TimeStamp=datetime(2024, 7, 4, 3, 11, 38, tzinfo=UTC),
        ExpiryDate="P90D",
        DeliveryReport=True,
        Priority="Low",
        Subject="zeep subject",
        Content={"href": "cid:abc", "allowAdaptations": False},
    )
    message = decode(body, "text/xml")
    assert isinstance(message, SubmitReq)
    assert message.version == version
    assert message.transaction_id == "zeep-1"
    assert message.mm7_version == "5.3.0"
    assert message.sender_identification.vasp_id == "vasp"
    assert message.sender_identification.vas_id == "svc"
    expected_sender = (
        Address.rfc2822("vasp@example.com")
        if legacy
        else Address(value="7777", kind=AddressKind.SHORT_CODE, display_only=False)
    )
    assert message.sender_identification.sender_address == expected_sender
    assert message.recipients.to == (
        Address.number(number, display_only=False),
        Address.rfc2822("a@b.example", display_only=True),
    )
    assert message.recipients.bcc == (Address.short_code("1234", display_only=False),)
    assert message.service_code == "SC-1"
    assert message.time_stamp == datetime(2024, 7, 4, 3, 11, 38, tzinfo=UTC)
    assert message.expiry_date == "P90D"
    assert (message.delivery_report, message.priority, message.subject) == (
        True,
        "Low",
        "zeep subject",
    )
    assert message.content is not None
    assert (message.content.href, message.content.allow_adaptations) == ("cid:abc", False)
    assert "dangling_href" in message.leniencies  # no attachment rendered, correctly flagged
    assert not {"element_order", "missing_mandatory", "extension_element"} & set(message.leniencies)


def test_we_decode_a_deliver_req_zeep_rendered() -> None:
    body = render(
        "REL-6-MM7-1-4",
        "DeliverReq",
        MM7Version="6.8.0",
        MMSRelayServerID="mmsc-7",
        VASPID="vasp",
        Sender=_z_number("+15550001"),
        Recipients={"_value_1": [{"To": {"_value_1": [{"ShortCode": {"_value_1": "7777"}}]}}]},
        Previouslysentby={"UserAgent": [{"sequence": 1, **_z_number("+15550002")}]},
        TimeStamp=datetime(2024, 7, 4, tzinfo=UTC),
        Priority="High",
        UACapabilities={"UAProf": "Nokia6230", "TimeStamp": "2024-07-01T00:00:00Z"},
        Content={"href": "cid:c1"},
    )
    message = decode(body)
    assert isinstance(message, DeliverReq)
    assert message.mms_relay_server_id == "mmsc-7"
    assert message.vasp_id == "vasp"
    assert message.sender == Address.number("+15550001", display_only=False)
    assert message.recipients is not None
    assert message.recipients.to == (Address.short_code("7777", display_only=False),)
    assert [(u.address.value, u.sequence) for u in message.previously_sent_by] == [("+15550002", 1)]
    assert message.priority == "High"
    assert message.ua_capabilities is not None
    assert message.ua_capabilities.ua_prof == "Nokia6230"
    assert message.ua_capabilities.time_stamp == datetime(2024, 7, 1, tzinfo=UTC)


@pytest.mark.parametrize("version", ["REL-5-MM7-1-0", "REL-6-MM7-1-1", "REL-6-MM7-1-4"])
def test_we_decode_reports_zeep_rendered(version: str) -> None:
    date_element = "TimeStamp" if version == "REL-6-MM7-1-1" else "Date"
    number = "15551234" if version in LEGACY_VERSIONS else "+15551234"
    report = render(
        version,
        "DeliveryReportReq",
        MM7Version="5.3.0",
        MessageID="msg-42",
        Recipient=_z_number(number),
        Sender={"ShortCode": {"_value_1": "7777"}},
        **{date_element: datetime(2024, 7, 4, 3, 0, tzinfo=UTC)},
        MMStatus="Retrieved",
        StatusText="delivered",
    )
    message = decode(report)
    assert isinstance(message, DeliveryReportReq)
    assert (message.message_id, message.mm_status, message.status_text) == (
        "msg-42",
        "Retrieved",
        "delivered",
    )
    assert message.recipient == Address.number(number, display_only=False)
    assert message.date == datetime(2024, 7, 4, 3, 0, tzinfo=UTC)
    read = render(
        version,
        "ReadReplyReq",
        MM7Version="5.3.0",
        MessageID="msg-43",
        Recipient=_z_number(number),
        Sender=_z_number(number),
        TimeStamp=datetime(2024, 7, 4, tzinfo=UTC),
        MMStatus="Read",
    )
    reply = decode(read)
    assert isinstance(reply, ReadReplyReq)
    assert (reply.message_id, reply.mm_status) == ("msg-43", "Read")


@pytest.mark.parametrize("version", VERSIONS)
def test_we_decode_responses_zeep_rendered(version: str) -> None:
    values: dict[str, Any] = {
        "MM7Version": "5.3.0",
        "Status": {"StatusCode": 1000, "StatusText": "Success"},
    }
    if version != "REL-5-MM7-1-0":
        values["MessageID"] = "mid-1"
    message = decode(render(version, "SubmitRsp", **values))
    assert isinstance(message, SubmitRsp)
    assert (message.status_code, message.status_text) == (1000, "Success")
    assert message.message_id == values.get("MessageID")
    error = decode(
        render(
            version,
            "RSErrorRsp",
            fault=True,
            MM7Version="5.3.0",
            Status={"StatusCode": 4006, "StatusText": "Service unavailable"},
        )
    )
    assert isinstance(error, RSErrorRsp)
    assert (error.status_code, error.fault_code, error.fault_string) == (
        4006,
        "soap:Server",
        "zeep fault",
    )


# The remaining message types, every version whose schema defines them. zeep renders
# each of them from the official schemas (none needs skipping): element -> (what zeep is
# given, the fields we must read back). Elements a version's layout lacks are left out.
_SID = {"VASPID": "vasp", "VASID": "svc"}
_STATUS = {"StatusCode": 2005, "StatusText": "no such message"}
_READ_STATUS = {"status_code": 2005, "status_text": "no such message"}
_REPLACE_COMMON: dict[str, tuple[Any, dict[str, Any]]] = {
    "ServiceCode": ({"_value_1": "SC-9"}, {"service_code": "SC-9"}),
    "TimeStamp": (
        datetime(2024, 7, 4, 3, tzinfo=UTC),
        {"time_stamp": datetime(2024, 7, 4, 3, tzinfo=UTC)},
    ),
    "EarliestDeliveryTime": ("P1D", {"earliest_delivery_time": "P1D"}),
    "ReadReply": (True, {"read_reply": True}),
    "Content": (
        {"href": "cid:new", "allowAdaptations": False},
        {"content": ContentReference(href="cid:new", allow_adaptations=False)},
    ),
}
_APPLIC: dict[str, tuple[Any, dict[str, Any]]] = {
    "ApplicID": ("app-1", {"applic_id": "app-1"}),
    "ReplyApplicID": ("app-2", {"reply_applic_id": "app-2"}),
    "AuxApplicInfo": ("aux", {"aux_applic_info": "aux"}),
}
_GENERIC_RSP: dict[str, tuple[Any, dict[str, Any]]] = {"Status": (_STATUS, _READ_STATUS)}
OTHER_TYPES: dict[str, dict[str, tuple[Any, dict[str, Any]]]] = {
    "CancelReq": {
        "SenderIdentification": (
            _SID,
            {"sender_identification": SenderIdentification(vasp_id="vasp", vas_id="svc")},
        ),
        "MessageID": ("m-1", {"message_id": "m-1"}),
        **_APPLIC,
    },
    "ReplaceReq": {
        "SenderIdentification": (
            _SID,
            {"sender_identification": SenderIdentification(vasp_id="vasp", vas_id="svc")},
        ),
        "MessageID": ("m-2", {"message_id": "m-2"}),
        **_REPLACE_COMMON,
        # The same field under its REL-5 and its REL-6 name.
        "DistributionProtection": (True, {"distribution_indicator": True}),
        "DistributionIndicator": (True, {"distribution_indicator": True}),
        "ContentClass": ("image-basic", {"content_class": "image-basic"}),
        "DRMContent": (False, {"drm_content": False}),
        **_APPLIC,
    },
    "extendedCancelReq": {
        "SenderIdentification": (
            _SID,
            {"sender_identification": SenderIdentification(vasp_id="vasp", vas_id="svc")},
        ),
        "CancelID": ("m-3", {"cancel_id": "m-3"}),
    },
    "extendedReplaceReq": {
        "VASPID": ("vasp", {"vasp_id": "vasp"}),
        "VASID": ("svc", {"vas_id": "svc"}),
        "ReplaceID": ("m-4", {"replace_id": "m-4"}),
        **_REPLACE_COMMON,
        "ExpiryDate": (
            datetime(2024, 8, 1, tzinfo=UTC),
            {"expiry_date": datetime(2024, 8, 1, tzinfo=UTC)},
        ),
        "DeliveryReport": (True, {"delivery_report": True}),
    },
    "CancelRsp": _GENERIC_RSP,
    "ReplaceRsp": _GENERIC_RSP,
    "DeliveryReportRsp": _GENERIC_RSP,
    "ReadReplyRsp": _GENERIC_RSP,
    "VASPErrorRsp": _GENERIC_RSP,
    "DeliverRsp": {**_GENERIC_RSP, "ServiceCode": ({"_value_1": "SC-1"}, {"service_code": "SC-1"})},
    # The extended responses' Status holds a StatusCode only.
    "extendedCancelRsp": {
        "Status": ({"StatusCode": 1000}, {"status_code": 1000, "status_text": None})
    },
    "extendedReplaceRsp": {
        "MessageID": ("m-5", {"message_id": "m-5"}),
        "Status": ({"StatusCode": 1000}, {"status_code": 1000, "status_text": None}),
    },
}
OTHER_CASES = [
    (version, tag) for version in VERSIONS for tag in OTHER_TYPES if tag in LAYOUTS[version]
]


def test_the_other_types_cover_every_message_type() -> None:
    covered = {
        "SubmitReq",
        "DeliverReq",
        "DeliveryReportReq",
        "ReadReplyReq",
        "SubmitRsp",
        "RSErrorRsp",
    }
    assert covered | set(OTHER_TYPES) == set(MESSAGE_TYPES)
    assert {tag for _, tag in OTHER_CASES} == set(OTHER_TYPES)


@pytest.mark.parametrize(("version", "tag"), OTHER_CASES)
def test_we_decode_the_other_types_zeep_rendered(version: str, tag: str) -> None:
    present = {name for name, _ in LAYOUTS[version][tag]}
    table = {name: row for name, row in OTHER_TYPES[tag].items() if name in present}
    values = {name: given for name, (given, _) in table.items()}
    fault = tag == "VASPErrorRsp"  # error responses travel inside a SOAP Fault
    body = render(version, tag, fault=fault, MM7Version="5.3.0", **values)
    message = decode(body, "text/xml; charset=utf-8")
    assert type(message) is MESSAGE_TYPES[tag]
    assert (message.version, message.transaction_id, message.mm7_version) == (
        version,
        "zeep-1",
        "5.3.0",
    )
    for name, (_, expected) in table.items():
        for attr, value in expected.items():
            assert getattr(message, attr) == value, f"{version} {tag}.{name} -> {attr}"
    if fault:
        assert isinstance(message, VASPErrorRsp)
        assert (message.fault_code, message.fault_string) == ("soap:Server", "zeep fault")
    unexpected = {
        "element_order",
        "missing_mandatory",
        "extension_element",
        "element_not_in_version",
    }
    assert not unexpected & set(message.leniencies), message.leniencies
