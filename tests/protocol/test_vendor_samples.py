"""Every vendor sample in ../shared/mm7/samples decodes as its INDEX entry says.

The samples were written by other implementations (MMSCs, VASP toolkits, carrier
captures), so they check our decoder against peers independent of our encoder. Each
expectation below restates the sample's ``tolerant_parser_expectation`` and ``quirks``
from INDEX.json as concrete assertions: the right class, version, transaction id and
status, the attachments found, and the tolerances reported.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from protocol import (
    DecodeError,
    DeliverReq,
    DeliveryReportReq,
    MalformedXML,
    Message,
    ReadReplyReq,
    SubmitReq,
    decode,
    resolve_href,
)
from protocol.capture import split_http_message
from protocol.messages import MESSAGE_TYPES
from tests.conftest import SHARED_MM7, shared_mm7_path


@dataclass(frozen=True)
class Accept:
    cls: str
    version: str | None
    transaction_id: str | None
    status_code: int | None = None
    #: (media type, Content-ID, number of nested parts) per top-level attachment.
    attachments: tuple[tuple[str, str | None, int], ...] = ()
    leniencies: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Reject:
    error: type[DecodeError]
    match: str


R6 = "REL-6-MM7-1-4"
EXPECTED: dict[str, Accept | Reject] = {
    "instantcom-deliverreq-crlf-binary-jpeg-rel6.txt": Accept(
        "DeliverReq",
        R6,
        "11398c6a2e9f00000010",
        attachments=(("multipart/related", "content_15", 2),),
        leniencies=frozenset(
            {
                "boundary_sniffed",
                "missing_start",
                "content_id_without_brackets",
                "qualified_href",
                "href_spacing",
            }
        ),
    ),
    "instantcom-deliverreq-http-post-textplain-rel6.txt": Accept(
        "DeliverReq",
        R6,
        "vas00324-dlvr",
        attachments=(("text/plain", "forecast-location2000102-86453", 0),),
        leniencies=frozenset(
            {"dangling_href", "delimiter_padding", "transaction_id_whitespace", "element_order"}
        ),
    ),
    "instantcom-deliverreq-mime-nested-mixed-rel6.txt": Accept(
        "DeliverReq",
        R6,
        "vas00324-dlvr",
        attachments=(("multipart/mixed", "SaturnPics-01020930@news.tnn.com", 2),),
        leniencies=frozenset({"dangling_href", "missing_start", "boundary_sniffed"}),
    ),
    # Accepted: Sender is mandatory but missing, which we report instead of rejecting.
    "instantcom-deliverreq-nokia-jpeg-base64-rel6.txt": Accept(
        "DeliverReq",
        R6,
        "0Q296S401H79CPSU13V1K431DRK3G49M",
        attachments=(("multipart/related", "mm7-content", 2),),
        leniencies=frozenset({"missing_mandatory", "missing_start"}),
    ),
    "instantcom-fault-rserrorrsp-4002-rel6.xml": Accept("RSErrorRsp", R6, "123456", 4002),
    "instantcom-fork-submitreq-mime-jpeg-base64-rel6.txt": Accept(
        "SubmitReq",
        R6,
        "909f0596-3c7f-48f7-99de-f3c41eaa6d54",
        attachments=(("multipart/mixed", "mm7-content", 2),),
        leniencies=frozenset({"missing_start"}),
    ),
    "instantcom-submitrsp-bogus-ns-rel6-mm7-6-7.xml": Accept(
        "SubmitRsp",
        "REL-6-MM7-6-7",
        "vas00001-sub",
        1000,
        leniencies=frozenset(
            {"unknown_namespace", "extension_element", "transaction_id_whitespace"}
        ),
    ),
    "kt-deliveryreportreq-euckr-rel5-1-0.xml": Accept(
        "DeliveryReportReq",
        "REL-5-MM7-1-0",
        "c9131c:10822bc0263:-7c16t-uapl-05/192.168.151.72",
        leniencies=frozenset(
            {"unqualified_children", "element_not_in_version", "numeric_mm_status"}
        ),
    ),
    "kt-readreplyreq-euckr-rel5-1-0.xml": Accept(
        "ReadReplyReq",
        "REL-5-MM7-1-0",
        "b76fa:1095c56d913:-31dft-uapl-05/192.168.151.72",
        leniencies=frozenset({"unqualified_children", "numeric_mm_status"}),
    ),
    "kt-submitrsp-euckr-rel5-1-2.xml": Accept(
        "SubmitRsp",
        "REL-5-MM7-1-2",
        "23088",
        1000,
        leniencies=frozenset({"element_order", "transaction_id_whitespace"}),
    ),
    "kt-vasperrorrsp-malformed-euckr-rel5-1-2.xml": Reject(MalformedXML, "tag mismatch"),
    "lgu-deliveryreportrsp-status-first-rel5-1-2.xml": Accept(
        "DeliveryReportRsp",
        "REL-5-MM7-1-2",
        "01010001_20050614204547755",
        1000,
        leniencies=frozenset({"element_order"}),
    ),
    # Declares euc-kr but holds UTF-8: read as UTF-8 and say so.
    "lgu-submitreq-mime-euckr-rel5-1-2.txt": Accept(
        "SubmitReq",
        "REL-5-MM7-1-2",
        "23088",
        leniencies=frozenset(
            {"charset_mismatch", "href_without_colon", "dangling_href", "boolean_case"}
        ),
    ),
    "sinchdoc-deliverreq-envelope-malformed-prefix-rel6.xml": Reject(
        MalformedXML, "prefix soap-env"
    ),
    "sinchdoc-deliverrsp-rel6.xml": Accept("DeliverRsp", R6, "1000001", 1000),
    "sinchdoc-deliveryreportreq-http-no-boundary-rel6.txt": Accept(
        "DeliveryReportReq",
        R6,
        "10000001",
        leniencies=frozenset({"multipart_without_boundary"}),
    ),
    "sinchdoc-fault-rserrorrsp-2007-details-rel6.xml": Accept(
        "RSErrorRsp", R6, "1000001", 2007, leniencies=frozenset({"details_as_text"})
    ),
    "sinchdoc-submitreq-http-multipart-smil-rel6.txt": Accept(
        "SubmitReq",
        R6,
        "555e29f8879be",
        attachments=(("multipart/related", "generic_content_id", 2),),
        leniencies=frozenset({"namespace_from_header", "element_order"}),
    ),
    "skt-submitreq-capture-new-rel5-1-0.txt": Accept(
        "SubmitReq",
        "REL-5-MM7-1-0",
        "00001",
        attachments=(("multipart/related", None, 2),),
        leniencies=frozenset(
            {"charset_mismatch", "broken_header_folding", "unparsed_date", "extension_element"}
        ),
    ),
    "skt-submitreq-envelope-rfc822-dates-rel5-1-0.xml": Accept(
        "SubmitReq",
        "REL-5-MM7-1-0",
        "73501",
        leniencies=frozenset({"trailing_garbage", "date_format", "extension_element"}),
    ),
    "vectorcore-deliverrsp-rel5-1-0.xml": Accept(
        "DeliverRsp",
        "REL-5-MM7-1-0",
        "txn-deliver",
        1000,
        leniencies=frozenset({"unqualified_children", "extension_element"}),
    ),
    "vectorcore-submitreq-multipart-lf-rel5-1-0.txt": Accept(
        "SubmitReq",
        "REL-5-MM7-1-0",
        "txn-fixture",
        attachments=(("text/plain", "message-content", 0),),
        leniencies=frozenset({"missing_start", "unqualified_children"}),
    ),
    "xtt-submitreq-3gpp-example-rel5-1-3.txt": Accept(
        "SubmitReq",
        "REL-5-MM7-1-3",
        "vas00001-sub",
        attachments=(("multipart/mixed", "SaturnPics-01020930@news.tnn.com", 2),),
        leniencies=frozenset({"element_not_in_version", "delimiter_padding"}),
    ),
    # "reject (or normalise namespace)": we normalise and flag the unknown namespace.
    "xtt-submitreq-http-negative-badns-rel5.txt": Accept(
        "SubmitReq",
        "REL-5-MM7-1",
        "vas00001-sub",
        attachments=(("application/octet-stream", "generic_content_id", 0),),
        leniencies=frozenset(
            {
                "unknown_namespace",
                "no_content_type",
                "part_without_content_type",
                "element_name_case",
                "extension_element",
            }
        ),
    ),
}


def _index() -> list[dict[str, Any]]:
    path = SHARED_MM7 / "samples" / "INDEX.json"
    if not path.is_file():
        return []
    return list(json.loads(path.read_text(encoding="utf-8")))


INDEX = _index()


def _decode(entry: dict[str, Any]) -> Message:
    raw = (shared_mm7_path() / "samples" / entry["file"]).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == entry["sha256"]
    start_line, headers, body = split_http_message(raw)
    assert (start_line is not None) == entry["framing"].startswith("HTTP")
    assert headers.get("content-type") == entry["http_content_type"]
    return decode(body, headers.get("content-type"))


def test_every_indexed_sample_has_an_expectation() -> None:
    shared_mm7_path()
    assert {entry["file"] for entry in INDEX} == set(EXPECTED)


@pytest.mark.parametrize("entry", INDEX, ids=[e["file"] for e in INDEX])
def test_sample(entry: dict[str, Any]) -> None:
    expected = EXPECTED[entry["file"]]
    verdict = entry["tolerant_parser_expectation"]
    if isinstance(expected, Reject):
        assert verdict.startswith("reject")
        with pytest.raises(expected.error, match=expected.match):
            _decode(entry)
        return
    assert not verdict.startswith("reject: not well-formed")
    message = _decode(entry)
    assert type(message).__name__ == expected.cls
    assert entry["message"].endswith(expected.cls)
    assert message.version == expected.version
    if entry["body_namespace"]:
        assert entry["body_namespace"].endswith("/" + (message.version or ""))
    assert message.transaction_id == expected.transaction_id
    assert getattr(message, "status_code", None) == expected.status_code
    found = tuple((a.media_type, a.content_id, len(a.parts)) for a in message.attachments)
    assert found == expected.attachments
    if entry["mime_parts"] and "start_not_found" not in message.leniencies:
        assert len(message.attachments) == len(entry["mime_parts"]) - 1
    missing = expected.leniencies - set(message.leniencies)
    assert not missing, f"leniencies not reported: {sorted(missing)} (got {message.leniencies})"
    for attachment in message.attachments:
        for part in attachment.walk():
            assert part.is_multipart == bool(part.parts)
            if not part.is_multipart:
                assert part.data, f"empty part {part.content_type}"


def _entry(name: str) -> dict[str, Any]:
    shared_mm7_path()
    return next(e for e in INDEX if e["file"] == name)


def test_binary_jpeg_survives_crlf_capture_intact() -> None:
    message = _decode(_entry("instantcom-deliverreq-crlf-binary-jpeg-rel6.txt"))
    assert isinstance(message, DeliverReq)
    assert message.content is not None
    target = resolve_href(message.content.href, message.attachments)
    assert target is message.attachments[0]
    jpeg = next(p for p in target.walk() if p.media_type == "image/jpeg")
    # The upstream file went through a text editor: high bytes became U+FFFD, but the
    # raw part (NULs included) must come through untouched.
    assert b"\x00\x10JFIF\x00" in jpeg.data[:40]
    assert jpeg.data.count(b"\x00") > 10
    assert len(jpeg.data) > 10_000
    assert message.recipients is not None
    assert message.recipients.to[0].kind.value == "ShortCode"
    assert message.sender is not None
    assert message.sender.value.startswith("+381")


def test_base64_jpeg_decodes_to_a_jpeg() -> None:
    message = _decode(_entry("instantcom-deliverreq-nokia-jpeg-base64-rel6.txt"))
    assert isinstance(message, DeliverReq)
    assert message.sender is None
    jpegs = [p for a in message.attachments for p in a.walk() if p.media_type == "image/jpeg"]
    assert jpegs
    assert all(j.data[:2] == b"\xff\xd8" for j in jpegs)


def test_kt_delivery_report_values() -> None:
    message = _decode(_entry("kt-deliveryreportreq-euckr-rel5-1-0.xml"))
    assert isinstance(message, DeliveryReportReq)
    assert message.mm_status == "1000"
    assert message.date is not None  # from <TimeStamp>
    assert message.mm7_version == "1.0"


def test_kt_read_reply_values() -> None:
    message = _decode(_entry("kt-readreplyreq-euckr-rel5-1-0.xml"))
    assert isinstance(message, ReadReplyReq)
    assert message.mm_status == "1000"
    assert message.time_stamp is not None


def test_skt_korean_subject_and_rfc2822_dates() -> None:
    message = _decode(_entry("skt-submitreq-envelope-rfc822-dates-rel5-1-0.xml"))
    assert isinstance(message, SubmitReq)
    assert message.subject is not None
    assert any("\uac00" <= ch <= "\ud7a3" for ch in message.subject)  # Hangul decoded
    assert message.time_stamp is not None
    assert not isinstance(message.time_stamp, str)
    assert message.time_stamp.utcoffset() is not None
    names = {ext.name for ext in message.extensions}
    assert {"X-SKT-ORIG-BPID", "X-SKT"} <= names


def test_xtt_example_keeps_relative_expiry_and_display_only() -> None:
    message = _decode(_entry("xtt-submitreq-3gpp-example-rel5-1-3.txt"))
    assert isinstance(message, SubmitReq)
    assert message.expiry_date == "P90D"
    kinds = {a.kind.value for a in message.recipients.all()}
    assert {"Number", "RFC2822Address"} <= kinds
    assert any(a.display_only for a in message.recipients.all())


def test_fault_string_and_code_are_kept() -> None:
    message = _decode(_entry("instantcom-fault-rserrorrsp-4002-rel6.xml"))
    assert getattr(message, "fault_code", None) == "Client"
    assert getattr(message, "fault_string", None)


def test_message_types_cover_every_sample_class() -> None:
    shared_mm7_path()
    for entry in INDEX:
        name = entry["message"].split("/")[-1].split(" ")[0]
        assert name in MESSAGE_TYPES


def test_samples_are_not_copied_into_the_repo() -> None:
    shared_mm7_path()
    repo = Path(__file__).resolve().parents[2]
    digests = {entry["sha256"] for entry in INDEX}
    for path in (repo / "fixtures").rglob("*"):
        if path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() not in digests, path
