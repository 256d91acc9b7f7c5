"""``mm7-gateway inspect``: JSON for anything decodable, one stderr line and exit 1 otherwise."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, shared_mm7_path

INSPECT = [sys.executable, "-m", "gateway.cli.inspect"]


def run(*args: str | Path, command: list[str] = INSPECT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def inspect_json(*args: str | Path) -> dict[str, Any]:
    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return dict(json.loads(result.stdout))


def test_fixture_http_request_with_nested_parts() -> None:
    report = inspect_json(FIXTURES / "mm7" / "submit_req_rel6_14.http")
    assert report["type"] == "SubmitReq"
    assert report["version"] == "REL-6-MM7-1-4"
    assert report["namespace"].endswith("/REL-6-MM7-1-4")
    assert report["transaction_id"] == "fx-submit-0001"
    assert report["http"]["start_line"] == "POST /mm7 HTTP/1.1"
    fields = report["fields"]
    assert fields["mm7_version"] == "6.8.0"
    assert fields["subject"] == "Tomorrow: sunny"
    assert fields["time_stamp"] == "2025-03-01T08:00:00+00:00"
    assert fields["recipients"]["to"] == [
        {
            "value": "+15550100001",
            "kind": "Number",
            "display_only": None,
            "address_coding": None,
            "id": None,
        }
    ]
    assert fields["content"] == {"href": "cid:presentation@fixture", "allow_adaptations": True}
    assert report["leniencies"] == []
    (presentation,) = report["attachments"]
    assert presentation["content_id"] == "presentation@fixture"
    assert presentation["sha256"] is None
    gif = presentation["parts"][1]
    assert gif["content_type"] == "image/gif"
    assert gif["content_location"] == "sun.gif"
    assert gif["size"] == 43
    assert presentation["size"] == sum(p["size"] for p in presentation["parts"])
    text = presentation["parts"][2]
    data = "Tomorrow: sunny, 21 °C.".encode()
    assert (text["size"], text["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())


def test_fixture_fault_response() -> None:
    report = inspect_json(FIXTURES / "mm7" / "submit_rsp_4006.http")
    assert report["type"] == "RSErrorRsp"
    assert report["fields"]["status_code"] == 4006
    assert report["fields"]["fault_code"] == "soap:Server"
    assert report["http"]["start_line"].startswith("HTTP/1.1 500")


def test_bare_body_with_content_type_option(tmp_path: Path) -> None:
    raw = (FIXTURES / "mm7" / "deliver_req_base64.http").read_bytes()
    body = raw.split(b"\r\n\r\n", 1)[1]
    capture = tmp_path / "body.bin"
    capture.write_bytes(body)
    content_type = 'multipart/related; boundary="=_fx_deliver"; start=soap02'
    report = inspect_json(capture, "--content-type", content_type)
    assert report["type"] == "DeliverReq"
    assert "http" not in report
    assert "missing_start" not in report["leniencies"]
    (picture,) = report["attachments"]
    assert picture["content_id"] == "pic01"
    # Without the header the boundary is sniffed and the tolerance reported.
    sniffed = inspect_json(capture)
    assert {"no_content_type", "boundary_sniffed"} <= set(sniffed["leniencies"])
    assert sniffed["attachments"] == report["attachments"]


@pytest.mark.parametrize(
    ("sample", "kind", "extra"),
    [
        ("sinchdoc-submitreq-http-multipart-smil-rel6.txt", "SubmitReq", "namespace_from_header"),
        ("instantcom-deliverreq-crlf-binary-jpeg-rel6.txt", "DeliverReq", "qualified_href"),
        ("kt-deliveryreportreq-euckr-rel5-1-0.xml", "DeliveryReportReq", "numeric_mm_status"),
        ("sinchdoc-fault-rserrorrsp-2007-details-rel6.xml", "RSErrorRsp", "details_as_text"),
        (
            "sinchdoc-deliveryreportreq-http-no-boundary-rel6.txt",
            "DeliveryReportReq",
            "multipart_without_boundary",
        ),
    ],
)
def test_shared_samples(sample: str, kind: str, extra: str) -> None:
    path = shared_mm7_path() / "samples" / sample
    report = inspect_json(path)
    assert report["type"] == kind
    assert extra in report["leniencies"]
    for attachment in report["attachments"]:
        for part in attachment.get("parts", []):
            assert part["size"] > 0
            assert len(part["sha256"]) == 64


@pytest.mark.parametrize(
    ("sample", "error"),
    [
        ("kt-vasperrorrsp-malformed-euckr-rel5-1-2.xml", "MalformedXML"),
        ("sinchdoc-deliverreq-envelope-malformed-prefix-rel6.xml", "MalformedXML"),
    ],
)
def test_undecodable_sample_is_one_line_on_stderr(sample: str, error: str) -> None:
    result = run(shared_mm7_path() / "samples" / sample)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {error}: ")
    assert "Traceback" not in result.stderr


def test_garbage_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01 not mm7 at all")
    result = run(junk)
    assert result.returncode == 1
    assert result.stderr.startswith("error: MalformedMIME: ")
    assert len(result.stderr.splitlines()) == 1


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path / "nope.xml")
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot read ")
    assert len(result.stderr.splitlines()) == 1


def test_through_the_mm7_gateway_command() -> None:
    result = run(
        "inspect",
        FIXTURES / "mm7" / "read_reply_req_rel5_10.xml",
        command=[sys.executable, "-m", "gateway"],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["type"] == "ReadReplyReq"


def _index() -> list[dict[str, object]]:
    path = shared_mm7_path() / "samples" / "INDEX.json"
    return json.loads(path.read_text()) if path.is_file() else []


@pytest.mark.parametrize("entry", _index(), ids=lambda e: str(e["file"]))
def test_inspect_follows_every_sample_verdict(entry: dict[str, object]) -> None:
    """Every shared sample: decoded (exit 0, its type) unless INDEX says a tolerant parser
    rejects it, then one line on stderr and exit 1 (never a traceback)."""
    verdict = str(entry["tolerant_parser_expectation"])
    result = run(shared_mm7_path() / "samples" / str(entry["file"]))
    if verdict.startswith("reject: not well-formed"):
        assert result.returncode == 1
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
        return
    if verdict.startswith("reject (or normalise namespace)"):
        # Either is right; what is never right is a crash.
        assert result.returncode in (0, 1) and "Traceback" not in result.stderr
        return
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # INDEX names faults "Fault/RSErrorRsp": the decoded type is the one carried.
    assert report["type"].lower() in str(entry["message"]).lower().split("/")
