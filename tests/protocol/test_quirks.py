"""Hand-written byte cases for every tolerance listed in ../shared/mm7/QUIRKS.md.

Each test names the quirk it covers. The vendor samples (test_vendor_samples.py) cover
the same ground with real captures; these cases isolate one variation at a time.
"""

from __future__ import annotations

import base64
import quopri
from datetime import UTC, datetime, timedelta, timezone

import pytest

from protocol import (
    Address,
    AddressKind,
    DeliverReq,
    DeliveryReportReq,
    DeliveryReportRsp,
    EncodeError,
    InvalidDate,
    Message,
    ReadReplyReq,
    RSErrorRsp,
    SubmitReq,
    SubmitRsp,
    VASPErrorRsp,
    decode,
    encode,
    resolve_href,
)
from protocol.capture import split_http_message

NS6 = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"
NS5 = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-5-MM7-1-0"
ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def envelope(
    body: str,
    *,
    ns: str = NS6,
    header: str | None = None,
    declaration: str = '<?xml version="1.0" encoding="utf-8"?>',
) -> bytes:
    if header is None:
        header = (
            f'<mm7:TransactionID xmlns:mm7="{ns}" env:mustUnderstand="1">t-1</mm7:TransactionID>'
        )
    return (
        f'{declaration}<env:Envelope xmlns:env="{ENV}"><env:Header>{header}</env:Header>'
        f"<env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


def dr_body(*, inner: str = "", ns: str = NS6, prefix: str = "") -> str:
    p = f"{prefix}:" if prefix else ""
    xmlns = f'xmlns:{prefix}="{ns}"' if prefix else f'xmlns="{ns}"'
    inner = inner or (
        "<MM7Version>6.8.0</MM7Version><MessageID>m-1</MessageID>"
        "<Recipient><Number>+15551234</Number></Recipient>"
        "<Sender><ShortCode>7777</ShortCode></Sender>"
        "<Date>2024-07-04T03:11:38Z</Date><MMStatus>Retrieved</MMStatus>"
    )
    return f"<{p}DeliveryReportReq {xmlns}>{inner}</{p}DeliveryReportReq>"


def submit_rsp(inner: str, ns: str = NS6) -> bytes:
    return envelope(f'<SubmitRsp xmlns="{ns}">{inner}</SubmitRsp>', ns=ns)


OK_STATUS = "<Status><StatusCode>1000</StatusCode><StatusText>Success</StatusText></Status>"


# -- versions and namespaces -------------------------------------------------------------


@pytest.mark.parametrize("value", ["1.0", "1.6", "5.2.0", "6.7.0"])
def test_mm7_version_values_seen_in_the_wild_are_kept(value: str) -> None:
    message = decode(
        submit_rsp(f"<MM7Version>{value}</MM7Version>{OK_STATUS}<MessageID>x</MessageID>")
    )
    assert message.mm7_version == value
    assert message.version == "REL-6-MM7-1-4"


@pytest.mark.parametrize(
    ("suffix", "version"),
    [("REL-6-MM7-6-7", "REL-6-MM7-6-7"), ("REL-5-MM7-1", "REL-5-MM7-1")],
)
def test_made_up_and_truncated_namespaces(suffix: str, version: str) -> None:
    ns = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/" + suffix
    message = decode(submit_rsp(f"<MM7Version>6.7.0</MM7Version>{OK_STATUS}", ns))
    assert isinstance(message, SubmitRsp)
    assert message.version == version
    assert "unknown_namespace" in message.leniencies


def test_message_with_no_namespace_at_all() -> None:
    body = f"<SubmitRsp><MM7Version>6.8.0</MM7Version>{OK_STATUS}</SubmitRsp>"
    message = decode(envelope(body, header="<TransactionID>t-1</TransactionID>"))
    assert isinstance(message, SubmitRsp)
    assert message.version is None
    assert "no_namespace" in message.leniencies


def test_prefixed_message_with_unqualified_children() -> None:
    inner = (
        "<MM7Version>5.3.0</MM7Version><MessageID>m-1</MessageID>"
        "<Recipient><Number>15551234</Number></Recipient><Sender><Number>7777</Number></Sender>"
        "<Date>2024-07-04T03:11:38</Date><MMStatus>Expired</MMStatus>"
    )
    body = f'<mm7:DeliveryReportReq xmlns:mm7="{NS5}">{inner}</mm7:DeliveryReportReq>'
    message = decode(envelope(body, ns=NS5))
    assert isinstance(message, DeliveryReportReq)
    assert message.mm_status == "Expired"
    assert message.message_id == "m-1"
    assert "unqualified_children" in message.leniencies


def test_fault_parts_in_the_mm7_namespace_via_default_namespace() -> None:
    raw = (
        f'<Envelope xmlns="{ENV}"><Body><Fault xmlns="{NS6}"><faultcode>Client</faultcode>'
        f"<faultstring>bad</faultstring><detail><RSErrorRsp><MM7Version>6.8.0</MM7Version>"
        f"<Status><StatusCode>2007</StatusCode><StatusText>corrupt</StatusText></Status>"
        f"</RSErrorRsp></detail></Fault></Body></Envelope>"
    ).encode()
    message = decode(raw, "text/xml")
    assert isinstance(message, RSErrorRsp)
    assert (message.status_code, message.fault_code, message.fault_string) == (
        2007,
        "Client",
        "bad",
    )
    assert "missing_transaction_id" in message.leniencies


def test_fault_parts_in_the_envelope_namespace() -> None:
    raw = envelope(
        f"<env:Fault><env:faultcode>env:Server</env:faultcode><env:faultstring>busy"
        f'</env:faultstring><env:detail><VASPErrorRsp xmlns="{NS6}"><MM7Version>6.8.0'
        f"</MM7Version><Status><StatusCode>4006</StatusCode><StatusText>x</StatusText>"
        f"</Status></VASPErrorRsp></env:detail></env:Fault>"
    )
    message = decode(raw, "text/xml")
    assert isinstance(message, VASPErrorRsp)
    assert (message.status_code, message.fault_code) == (4006, "env:Server")


def test_error_response_without_fault_wrapper() -> None:
    body = f'<RSErrorRsp xmlns="{NS6}"><MM7Version>6.8.0</MM7Version>{OK_STATUS}</RSErrorRsp>'
    message = decode(envelope(body.replace("1000", "2150")))
    assert isinstance(message, RSErrorRsp)
    assert message.status_code == 2150
    assert message.fault_code is None
    assert "error_without_fault" in message.leniencies


def test_bare_message_without_envelope() -> None:
    raw = f'<SubmitRsp xmlns="{NS6}"><MM7Version>6.8.0</MM7Version>{OK_STATUS}</SubmitRsp>'
    message = decode(raw.encode())
    assert isinstance(message, SubmitRsp)
    assert "no_envelope" in message.leniencies


# -- elements and values ------------------------------------------------------------------


def test_status_before_mm7_version() -> None:
    message = decode(
        submit_rsp(f"{OK_STATUS}<MM7Version>5.3.0</MM7Version><MessageID>x</MessageID>")
    )
    assert isinstance(message, SubmitRsp)
    assert (message.status_code, message.message_id) == (1000, "x")
    assert "element_order" in message.leniencies


def test_timestamp_for_date_and_recipients_for_recipient() -> None:
    inner = (
        "<MM7Version>6.8.0</MM7Version><MessageID>m-1</MessageID>"
        "<Recipients><Number>+15551234</Number></Recipients>"
        "<Sender><ShortCode>7777</ShortCode></Sender>"
        "<TimeStamp>2024-07-04T03:11:38Z</TimeStamp><MMStatus>1000</MMStatus>"
    )
    message = decode(envelope(dr_body(inner=inner)))
    assert isinstance(message, DeliveryReportReq)
    assert message.recipient == Address.number("+15551234")
    assert message.date == datetime(2024, 7, 4, 3, 11, 38, tzinfo=UTC)
    assert message.mm_status == "1000"
    assert {"element_alias", "numeric_mm_status"} <= set(message.leniencies)


def test_wrong_case_element_names() -> None:
    inner = (
        "<MM7Version>6.8.0</MM7Version><MessageId>m-1</MessageId>"
        "<Recipient><number>+15551234</number></Recipient>"
        "<Sender><ShortCode>7777</ShortCode></Sender>"
        "<Date>2024-07-04T03:11:38Z</Date><MMStatus>Retrieved</MMStatus>"
    )
    message = decode(envelope(dr_body(inner=inner)))
    assert isinstance(message, DeliveryReportReq)
    assert message.message_id == "m-1"
    assert message.recipient == Address.number("+15551234")
    assert "element_name_case" in message.leniencies


def test_vendor_elements_are_kept_as_extensions() -> None:
    inner = (
        "<MM7Version>6.8.0</MM7Version><MessageID>m-1</MessageID>"
        "<Recipient><Number>+15551234</Number></Recipient>"
        "<Sender><ShortCode>7777</ShortCode></Sender><CPID>cp-9</CPID>"
        "<Date>2024-07-04T03:11:38Z</Date><MMStatus>Retrieved</MMStatus>"
        '<X-SKT-CIDSID xmlns="urn:skt">42</X-SKT-CIDSID><CalledNet>SKT</CalledNet>'
    )
    message = decode(envelope(dr_body(inner=inner)))
    assert [(e.name, e.text) for e in message.extensions] == [
        ("CPID", "cp-9"),
        ("X-SKT-CIDSID", "42"),
        ("CalledNet", "SKT"),
    ]
    assert message.extensions[1].namespace == "urn:skt"
    assert b"X-SKT-CIDSID" in message.extensions[1].xml
    assert "extension_element" in message.leniencies


@pytest.mark.parametrize(("text", "value"), [("True", True), ("TRUE", True), ("False", False)])
def test_booleans_in_the_wrong_case(text: str, value: bool) -> None:
    body = (
        f'<SubmitReq xmlns="{NS6}"><MM7Version>6.8.0</MM7Version><SenderIdentification>'
        f"<VASPID>v</VASPID></SenderIdentification><Recipients><To><Number>+1555</Number></To>"
        f"</Recipients><DeliveryReport>{text}</DeliveryReport></SubmitReq>"
    )
    message = decode(envelope(body))
    assert isinstance(message, SubmitReq)
    assert message.delivery_report is value
    assert "boolean_case" in message.leniencies


KST = timezone(timedelta(hours=9))


@pytest.mark.parametrize(
    ("text", "value", "lenient"),
    [
        ("2024-07-04T03:11:38Z", datetime(2024, 7, 4, 3, 11, 38, tzinfo=UTC), False),
        ("2024-07-04T03:11:38+09:00", datetime(2024, 7, 4, 3, 11, 38, tzinfo=KST), False),
        ("2024-07-04T03:11:38", datetime(2024, 7, 4, 3, 11, 38), False),  # noqa: DTZ001
        ("2007-11-30 09:50:25", datetime(2007, 11, 30, 9, 50, 25), True),  # noqa: DTZ001
        ("20240703210241", datetime(2024, 7, 3, 21, 2, 41), True),  # noqa: DTZ001
        ("Thu, 4 Jul 2024 03:11:38 +0900", datetime(2024, 7, 4, 3, 11, 38, tzinfo=KST), True),
        # Unpadded fields (a real MMSC's DeliveryReport); year first, so unambiguous.
        ("2005-06-4T10:55:59+09:00", datetime(2005, 6, 4, 10, 55, 59, tzinfo=KST), True),
        ("2005-6-4T1:5:9Z", datetime(2005, 6, 4, 1, 5, 9, tzinfo=UTC), True),
        ("P90D", "P90D", False),
        ("PT12H", "PT12H", False),
    ],
)
def test_date_forms(text: str, value: datetime | str, lenient: bool) -> None:
    inner = (
        "<MM7Version>6.8.0</MM7Version><MessageID>m-1</MessageID>"
        "<Recipient><Number>+15551234</Number></Recipient>"
        f"<Sender><ShortCode>7777</ShortCode></Sender><Date>{text}</Date>"
        "<MMStatus>Retrieved</MMStatus>"
    )
    message = decode(envelope(dr_body(inner=inner)))
    assert isinstance(message, DeliveryReportReq)
    assert message.date == value
    if isinstance(value, datetime):
        assert (message.date.tzinfo is None) == (value.tzinfo is None)  # type: ignore[union-attr]
    assert ("date_format" in message.leniencies) is lenient


def test_unparseable_date_is_kept_as_text() -> None:
    inner = (
        "<MM7Version>6.8.0</MM7Version><MessageID>m-1</MessageID><Recipient><Number>1</Number>"
        "</Recipient><Sender><Number>2</Number></Sender><Date>목 7월 4 2024</Date>"
        "<MMStatus>Retrieved</MMStatus>"
    )
    message = decode(envelope(dr_body(inner=inner)))
    assert isinstance(message, DeliveryReportReq)
    assert message.date == "목 7월 4 2024"
    assert "unparsed_date" in message.leniencies


@pytest.mark.parametrize("raw", ["02-07-2024 20:46:43", "목 7월 4 2024", "2024-13-45T99:00:00"])
def test_a_date_kept_as_text_is_not_written_back(raw: str) -> None:
    inner = (
        "<MM7Version>6.8.0</MM7Version><MessageID>m-1</MessageID><Recipient><Number>1</Number>"
        f"</Recipient><Sender><Number>2</Number></Sender><Date>{raw}</Date>"
        "<MMStatus>Retrieved</MMStatus>"
    )
    message = decode(envelope(dr_body(inner=inner)))
    assert isinstance(message, DeliveryReportReq)
    assert message.date == raw
    assert "unparsed_date" in message.leniencies
    # Re-emitting it verbatim would be schema-invalid output: refused with a specific error.
    with pytest.raises(InvalidDate, match="neither an xs:dateTime nor an xs:duration"):
        encode(message, "REL-6-MM7-1-4")
    assert issubclass(InvalidDate, EncodeError)


@pytest.mark.parametrize(
    "text", ["2024-07-04T03:11:38+09:00", "2024-07-04T03:11:38.5Z", "P1Y2M3DT4H5M6S", "-PT1S"]
)
def test_date_text_already_in_schema_form_is_written_as_is(text: str) -> None:
    message = DeliveryReportReq(
        transaction_id="t-1",
        message_id="m-1",
        recipient=Address.number("+15551234"),
        sender=Address.number("+15559876"),
        date=text,
        mm_status="Retrieved",
    )
    _, body = encode(message, "REL-6-MM7-1-4")
    assert f"<Date>{text}</Date>".encode() in body.replace(b"mm7:", b"")


@pytest.mark.parametrize(
    ("xml", "address", "leniency"),
    [
        ("<Number>+15551234</Number>", Address.number("+15551234"), None),
        ("<Number>15551234</Number>", Address.number("15551234"), None),
        ("<Number>010-5661-0926</Number>", Address.number("010-5661-0926"), None),
        ("<Number>+15551234/TYPE=PLMN</Number>", Address.number("+15551234"), "plmn_suffix"),
        ("<ShortCode>7777</ShortCode>", Address.short_code("7777"), None),
        (
            '<RFC2822Address displayOnly="true">a@b.example</RFC2822Address>',
            Address.rfc2822("a@b.example", display_only=True),
            None,
        ),
        ("+15551234", Address.number("+15551234"), "bare_address"),
        ("user@example.net", Address.rfc2822("user@example.net"), "bare_address"),
    ],
)
def test_address_forms_in_sender(xml: str, address: Address, leniency: str | None) -> None:
    body = (
        f'<DeliverReq xmlns="{NS6}"><MM7Version>6.8.0</MM7Version><Sender>{xml}</Sender>'
        "</DeliverReq>"
    )
    message = decode(envelope(body))
    assert isinstance(message, DeliverReq)
    assert message.sender == address
    if leniency:
        assert leniency in message.leniencies


def test_missing_mandatory_elements_are_tolerated_and_reported() -> None:
    # DeliverReq without Sender or Priority, empty Header without TransactionID.
    body = f'<DeliverReq xmlns="{NS6}"><MM7Version>6.8.0</MM7Version><Content href="cid:x"/></DeliverReq>'
    message = decode(envelope(body, header=""))
    assert isinstance(message, DeliverReq)
    assert message.sender is None
    assert message.priority is None
    assert message.transaction_id is None
    assert {"missing_mandatory", "missing_transaction_id", "dangling_href"} <= set(
        message.leniencies
    )


def test_swapped_sender_and_recipient_are_read_as_sent() -> None:
    inner = (
        "<MM7Version>6.8.0</MM7Version><MessageID>m-1</MessageID>"
        "<Recipient><ShortCode>7777</ShortCode></Recipient>"
        "<Sender><Number>+15551234</Number></Sender>"
        "<Date>2024-07-04T03:11:38Z</Date><MMStatus>Rejected</MMStatus>"
    )
    message = decode(envelope(dr_body(inner=inner)))
    assert isinstance(message, DeliveryReportReq)
    assert message.recipient is not None
    assert message.recipient.kind is AddressKind.SHORT_CODE
    assert message.sender == Address.number("+15551234")


# -- MIME and HTTP ----------------------------------------------------------------------------

SOAP = envelope(
    f'<DeliverReq xmlns="{NS6}"><MM7Version>6.8.0</MM7Version><Sender><Number>+1555</Number>'
    '</Sender><Content href="cid:img@x"/></DeliverReq>'
)
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"


def multipart(
    parts: list[tuple[list[str], bytes]],
    boundary: str = "b1",
    *,
    eol: bytes = b"\r\n",
    preamble: bytes = b"",
    close_trailer: bytes = b"",
) -> bytes:
    out = [preamble]
    for headers, body in parts:
        out.append(b"--" + boundary.encode() + eol)
        out.extend(h.encode() + eol for h in headers)
        out.append(eol + body + eol)
    out.append(b"--" + boundary.encode() + b"--" + close_trailer + eol)
    return b"".join(out)


def two_parts(
    image_headers: list[str] | None = None, image: bytes = GIF
) -> list[tuple[list[str], bytes]]:
    return [
        (["Content-Type: text/xml; charset=utf-8", "Content-ID: <soap>"], SOAP),
        (image_headers or ["Content-Type: image/gif", "Content-ID: <img@x>"], image),
    ]


def _gif(message: Message) -> bytes:
    content = getattr(message, "content", None)
    assert content is not None
    part = resolve_href(content.href, message.attachments)
    assert part is not None, message.leniencies
    return part.data


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/related; boundary="b1"; type="text/xml"; start="<soap>"',
        "multipart/related; boundary=b1; type=text/xml; start=<soap>",
        'multipart/related; boundary="b1"; start="soap"',
        'Multipart/Related; Boundary="b1"; Type="text/xml"; Start="<soap>"',
        'multipart/related; boundary="b1";',
    ],
)
def test_content_type_parameter_variants(content_type: str) -> None:
    message = decode(multipart(two_parts()), content_type)
    assert _gif(message) == GIF
    assert ("missing_start" in message.leniencies) is ("start" not in content_type.lower())


def test_missing_start_takes_the_first_part_even_without_content_id() -> None:
    parts = [
        (["Content-Type: text/xml"], SOAP),
        (["Content-Type: image/gif", "Content-ID: <img@x>"], GIF),
    ]
    message = decode(multipart(parts), 'multipart/related; boundary="b1"')
    assert _gif(message) == GIF
    assert "missing_start" in message.leniencies


def test_start_pointing_nowhere_falls_back_to_the_first_part() -> None:
    message = decode(multipart(two_parts()), 'multipart/related; boundary="b1"; start="<nope>"')
    assert _gif(message) == GIF
    assert "start_not_found" in message.leniencies


def test_bare_text_xml_and_no_content_type() -> None:
    assert isinstance(decode(SOAP, "text/xml; charset=utf-8"), DeliverReq)
    message = decode(SOAP)
    assert "no_content_type" in message.leniencies


def test_multipart_content_type_without_boundary_over_bare_xml() -> None:
    message = decode(SOAP, 'multipart/related; type="text/xml";')
    assert isinstance(message, DeliverReq)
    assert "multipart_without_boundary" in message.leniencies


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/xml",
        "text/xml; charset=utf-8",
        "application/soap+xml",
        'multipart/related; type="text/xml"',  # no boundary: the body is bare XML
        None,
    ],
)
@pytest.mark.parametrize("lead", [b"", b"\r\n  "])
def test_utf8_bom_before_bare_xml(content_type: str | None, lead: bytes) -> None:
    message = decode(lead + BOM + SOAP, content_type)
    assert isinstance(message, DeliverReq)
    assert message.sender == Address.number("+1555")
    assert "utf8_bom" in message.leniencies


@pytest.mark.parametrize("start", ['; start="<soap>"', ""])
def test_utf8_bom_before_the_soap_part_of_a_multipart(start: str) -> None:
    parts = two_parts()
    parts[0] = (parts[0][0], BOM + parts[0][1])
    message = decode(multipart(parts), f'multipart/related; boundary="b1"; type="text/xml"{start}')
    assert isinstance(message, DeliverReq)
    assert _gif(message) == GIF
    assert "utf8_bom" in message.leniencies


def test_no_bom_no_bom_leniency() -> None:
    assert "utf8_bom" not in decode(SOAP, "text/xml").leniencies
    assert (
        "utf8_bom"
        not in decode(multipart(two_parts()), 'multipart/related; boundary="b1"').leniencies
    )


def test_multipart_body_without_content_type_sniffs_the_boundary() -> None:
    message = decode(multipart(two_parts(), boundary="=_sniff_me"))
    assert _gif(message) == GIF
    assert {"no_content_type", "boundary_sniffed"} <= set(message.leniencies)


@pytest.mark.parametrize(
    ("href", "content_id", "leniency"),
    [
        ("cid:img@x", "<img@x>", None),
        ("cid:img@x", "img@x", "content_id_without_brackets"),
        ("cid: img@x", "<img@x>", "href_spacing"),
        ("cid img@x", "<img@x>", "href_without_colon"),
        ("img@x", "<img@x>", None),
    ],
)
def test_href_forms(href: str, content_id: str, leniency: str | None) -> None:
    soap = SOAP.replace(b'href="cid:img@x"', f'href="{href}"'.encode())
    parts = [
        (["Content-Type: text/xml"], soap),
        ([f"Content-ID: {content_id}", "Content-Type: image/gif"], GIF),
    ]
    message = decode(multipart(parts), 'multipart/related; boundary="b1"')
    assert _gif(message) == GIF
    assert "dangling_href" not in message.leniencies
    if leniency:
        assert leniency in message.leniencies


def test_namespace_qualified_href() -> None:
    soap = SOAP.replace(
        b'<Content href="cid:img@x"/>', f'<Content xmlns:m="{NS6}" m:href="cid:img@x"/>'.encode()
    )
    parts = [
        (["Content-Type: text/xml"], soap),
        (["Content-ID: <img@x>", "Content-Type: image/gif"], GIF),
    ]
    message = decode(multipart(parts), 'multipart/related; boundary="b1"')
    assert _gif(message) == GIF
    assert "qualified_href" in message.leniencies


def test_href_to_a_content_location() -> None:
    soap = SOAP.replace(b"cid:img@x", b"photo.gif")
    parts = [
        (["Content-Type: text/xml"], soap),
        (["Content-Location: photo.gif", "Content-Type: image/gif"], GIF),
    ]
    assert _gif(decode(multipart(parts), 'multipart/related; boundary="b1"')) == GIF


def test_dangling_href_is_reported() -> None:
    soap = SOAP.replace(b"cid:img@x", b"cid:missing")
    message = decode(
        multipart([(["Content-Type: text/xml"], soap), (["Content-Type: image/gif"], GIF)]),
        "multipart/related; boundary=b1",
    )
    assert "dangling_href" in message.leniencies
    assert len(message.attachments) == 1


@pytest.mark.parametrize("subtype", ["mixed", "related"])
def test_nested_multipart_content(subtype: str) -> None:
    smil = b'<smil><body><par><img src="cid:img@x"/></par></body></smil>'
    inner = multipart(
        [
            (["Content-Type: application/smil", "Content-ID: <pres>"], smil),
            (["Content-Type: image/gif", "Content-ID: <img@x>"], GIF),
        ],
        boundary="inner boundary 42",
    )
    soap = SOAP.replace(b"cid:img@x", b"cid:content")
    parts = [
        (["Content-Type: text/xml", "Content-ID: <soap>"], soap),
        (
            [
                f'Content-Type: multipart/{subtype}; boundary="inner boundary 42"; start="<pres>"',
                "Content-ID: <content>",
            ],
            inner,
        ),
    ]
    message = decode(multipart(parts), 'multipart/related; boundary="b1"; start="<soap>"')
    (content,) = message.attachments
    assert content.media_type == f"multipart/{subtype}"
    assert "boundary" not in content.content_type
    assert [p.content_id for p in content.parts] == ["pres", "img@x"]
    assert content.parts[1].data == GIF
    assert resolve_href("cid:img@x", message.attachments) is content.parts[1]


def test_sibling_parts_without_nesting() -> None:
    parts = [*two_parts(), (["Content-Type: text/plain", "Content-ID: <txt>"], b"hello")]
    message = decode(multipart(parts), 'multipart/related; boundary="b1"; start="<soap>"')
    assert [a.content_id for a in message.attachments] == ["img@x", "txt"]


@pytest.mark.parametrize(
    ("encoding", "encoded", "leniency"),
    [
        ("base64", base64.encodebytes(GIF), None),
        ("BASE64", base64.b64encode(GIF), None),
        ("binary", GIF, None),
        ("8bit", GIF, None),
        (None, GIF, None),
        ("quoted-printable", quopri.encodestring(GIF), None),
        ("x-uuencode", GIF, "unknown_transfer_encoding"),
    ],
)
def test_transfer_encodings(encoding: str | None, encoded: bytes, leniency: str | None) -> None:
    headers = ["Content-Type: image/gif", "Content-ID: <img@x>"]
    if encoding:
        headers.append(f"Content-Transfer-Encoding: {encoding}")
    message = decode(
        multipart(two_parts(headers, encoded)), 'multipart/related; boundary="b1"; start="<soap>"'
    )
    assert _gif(message) == GIF
    if leniency:
        assert leniency in message.leniencies


def test_7bit_text_part() -> None:
    headers = ["Content-Type: text/plain", "Content-ID: <img@x>", "Content-Transfer-Encoding: 7bit"]
    message = decode(multipart(two_parts(headers, b"plain text")), "multipart/related; boundary=b1")
    assert _gif(message) == b"plain text"


def test_broken_base64_is_salvaged_and_reported() -> None:
    headers = [
        "Content-Type: image/gif",
        "Content-ID: <img@x>",
        "Content-Transfer-Encoding: base64",
    ]
    message = decode(
        multipart(two_parts(headers, base64.b64encode(GIF) + b"!!")),
        "multipart/related; boundary=b1",
    )
    assert _gif(message) == GIF
    assert "invalid_base64" in message.leniencies


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_line_endings(eol: bytes) -> None:
    message = decode(multipart(two_parts(), eol=eol), "multipart/related; boundary=b1")
    assert _gif(message) == GIF


def test_preamble_and_leading_blank_line() -> None:
    body = multipart(two_parts(), preamble=b"\r\nThis is a multi-part message in MIME format.\r\n")
    message = decode(body, "multipart/related; boundary=b1")
    assert _gif(message) == GIF
    assert "mime_preamble" in message.leniencies
    assert _gif(decode(b"\r\n" + multipart(two_parts()), "multipart/related; boundary=b1")) == GIF


@pytest.mark.parametrize("boundary", ["--=_Part_1", "Story Parts 74526 8432", "b1"])
def test_unusual_boundaries(boundary: str) -> None:
    message = decode(
        multipart(two_parts(), boundary=boundary), f'multipart/related; boundary="{boundary}"'
    )
    assert _gif(message) == GIF


def test_junk_after_close_delimiter() -> None:
    message = decode(
        multipart(two_parts(), close_trailer=b" trailing junk"), "multipart/related; boundary=b1"
    )
    assert _gif(message) == GIF
    assert "junk_after_close_delimiter" in message.leniencies


def test_missing_close_delimiter() -> None:
    body = multipart(two_parts()).rsplit(b"--b1--", 1)[0]
    message = decode(body, "multipart/related; boundary=b1")
    assert _gif(message) == GIF
    assert "missing_close_delimiter" in message.leniencies


def test_delimiter_with_transport_padding() -> None:
    body = multipart(two_parts()).replace(b"--b1\r\n", b"--b1  \r\n")
    message = decode(body, "multipart/related; boundary=b1")
    assert _gif(message) == GIF
    assert "delimiter_padding" in message.leniencies


def test_header_folding_tab_and_broken() -> None:
    folded = ["Content-Type: multipart/related;\r\n\tboundary=inner", "Content-ID: <content>"]
    inner = multipart([(["Content-Type: image/gif", "Content-ID: <img@x>"], GIF)], boundary="inner")
    soap = SOAP.replace(b"cid:img@x", b"cid:content")
    parts = [(["Content-Type: text/xml"], soap), (folded, inner)]
    message = decode(multipart(parts), "multipart/related; boundary=b1")
    assert message.attachments[0].parts[0].data == GIF
    broken = [
        (["Content-Type: text/xml"], soap),
        (["Content-Type: multipart/related;", "boundary=inner", "Content-ID: <content>"], inner),
    ]
    message = decode(multipart(broken), "multipart/related; boundary=b1")
    assert message.attachments[0].parts[0].data == GIF
    assert "broken_header_folding" in message.leniencies


def test_header_without_space_after_colon() -> None:
    parts = [
        (["Content-Type:text/xml", "Content-ID:<soap>"], SOAP),
        (["Content-Type:image/gif", "Content-ID:<img@x>"], GIF),
    ]
    assert _gif(decode(multipart(parts), "multipart/related; boundary=b1; start=<soap>")) == GIF


KOREAN = "서울 날씨"


@pytest.mark.parametrize("charset", ["euc-kr", "ks_c_5601-1987", "ksc5601", "EUC-KR"])
def test_korean_charsets(charset: str) -> None:
    raw = envelope(
        f'<DeliverReq xmlns="{NS6}"><MM7Version>6.8.0</MM7Version><Sender><Number>1</Number>'
        f"</Sender><Subject>{KOREAN}</Subject></DeliverReq>",
        declaration=f'<?xml version="1.0" encoding="{charset}"?>',
    )
    message = decode(raw.decode().encode("cp949"))
    assert isinstance(message, DeliverReq)
    assert message.subject == KOREAN


def test_declared_charset_but_utf8_bytes() -> None:
    raw = envelope(
        f'<DeliverReq xmlns="{NS6}"><MM7Version>6.8.0</MM7Version><Sender><Number>1</Number>'
        f"</Sender><Subject>{KOREAN}</Subject></DeliverReq>",
        declaration='<?xml version="1.0" encoding="euc-kr"?>',
    )
    message = decode(raw)
    assert isinstance(message, DeliverReq)
    assert message.subject == KOREAN
    assert "charset_mismatch" in message.leniencies


@pytest.mark.parametrize("declaration", ["<?xml version='1.0' encoding='utf-8'?>", "", "\ufeff"])
def test_xml_declaration_variants(declaration: str) -> None:
    raw = envelope(dr_body(), declaration=declaration)
    assert isinstance(decode(raw), DeliveryReportReq)


def test_trailing_garbage_after_envelope() -> None:
    message = decode(envelope(dr_body()) + b"\n\n   ons='x'/></Foo></env:Envelope>^\n")
    assert isinstance(message, DeliveryReportReq)
    assert "trailing_garbage" in message.leniencies


def test_soapaction_and_http_framing_of_a_request() -> None:
    raw = (
        b'POST /mm7 HTTP/1.1\r\nHost: vasp.example\r\nSOAPAction: ""\r\n'
        b"Content-Type: text/xml; charset=utf-8\r\nContent-Length: 99999\r\n\r\n"
        + envelope(dr_body())
    )
    start, headers, body = split_http_message(raw)
    assert start == "POST /mm7 HTTP/1.1"
    assert headers["soapaction"] == '""'
    assert isinstance(decode(body, headers["content-type"]), DeliveryReportReq)


@pytest.mark.parametrize("status", [b"200 OK", b"500 Internal Server Error"])
def test_faults_over_http_200_and_500(status: bytes) -> None:
    fault = envelope(
        f"<env:Fault><faultcode>env:Server</faultcode><faultstring>x</faultstring><detail>"
        f'<RSErrorRsp xmlns="{NS6}"><MM7Version>6.8.0</MM7Version><Status><StatusCode>4006'
        f"</StatusCode><StatusText>Service unavailable</StatusText></Status></RSErrorRsp>"
        f"</detail></env:Fault>"
    )
    raw = b"HTTP/1.1 " + status + b'\r\nContent-Type: text/xml\r\nSOAPAction: ""\r\n\r\n' + fault
    start, headers, body = split_http_message(raw)
    assert start is not None
    assert start.split()[1] == status.split()[0].decode()
    message = decode(body, headers["content-type"])
    assert isinstance(message, RSErrorRsp)
    assert message.status_code == 4006


def test_http_401_has_no_mm7_body() -> None:
    raw = b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="mm7"\r\nContent-Length: 0\r\n\r\n'
    start, headers, body = split_http_message(raw)
    assert start == "HTTP/1.1 401 Unauthorized"
    assert headers["www-authenticate"].startswith("Basic")
    assert body == b""


def test_status_details_as_text_or_elements() -> None:
    for details, leniency in (
        ("<Details>quota</Details>", True),
        ("<Details><Text>quota</Text></Details>", False),
    ):
        status = (
            f"<Status><StatusCode>2001</StatusCode><StatusText>r</StatusText>{details}</Status>"
        )
        message = decode(
            envelope(
                f'<DeliveryReportRsp xmlns="{NS6}"><MM7Version>6.8.0</MM7Version>{status}</DeliveryReportRsp>'
            )
        )
        assert isinstance(message, DeliveryReportRsp)
        assert message.details == "quota"
        assert ("details_as_text" in message.leniencies) is leniency


def test_read_reply_with_numeric_status() -> None:
    inner = (
        "<MM7Version>1.0</MM7Version><MessageID>m</MessageID><Recipient><Number>1</Number>"
        "</Recipient><Sender><Number>2</Number></Sender><TimeStamp>2024-07-04T03:11:38</TimeStamp>"
        "<MMStatus>1000</MMStatus>"
    )
    message = decode(envelope(f'<ReadReplyReq xmlns="{NS5}">{inner}</ReadReplyReq>', ns=NS5))
    assert isinstance(message, ReadReplyReq)
    assert message.mm_status == "1000"


@pytest.mark.parametrize(
    "headers",
    [
        ["Content-Type: image/gif", "Content-Type: text/plain", "Content-ID: <img@x>"],
        # A broken folding line sends the block down the careful, line-by-line path.
        [
            "Content-Type: image/gif;",
            "name=x.gif",
            "Content-Type: text/plain",
            "Content-ID: <img@x>",
        ],
    ],
)
def test_repeated_part_header_first_wins(headers: list[str]) -> None:
    # Regression: a repeated header used to spin the header parser forever.
    message = decode(multipart(two_parts(headers)), "multipart/related; boundary=b1; start=<soap>")
    assert message.attachments[0].media_type == "image/gif"
    assert _gif(message) == GIF
