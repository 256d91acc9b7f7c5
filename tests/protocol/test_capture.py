"""protocol.capture.split_http_message: captured HTTP messages, bare bodies, odd framing."""

from __future__ import annotations

import pytest

from protocol import MalformedMIME
from protocol.capture import split_http_message


def test_request_with_headers_and_body() -> None:
    raw = b"POST /mm7 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 5\r\n\r\n<a/>\n"
    start, headers, body = split_http_message(raw)
    assert start == "POST /mm7 HTTP/1.1"
    assert headers == {"host": "x", "content-type": "text/xml", "content-length": "5"}
    assert body == b"<a/>\n"


def test_response_lf_only_and_folded_header() -> None:
    raw = b"HTTP/1.0 200 OK\nContent-Type: multipart/related;\n\tboundary=b\nX-A: 1\nX-A: 2\n\nBODY"
    start, headers, body = split_http_message(raw)
    assert start == "HTTP/1.0 200 OK"
    assert headers["content-type"] == "multipart/related; boundary=b"
    assert headers["x-a"] == "1"  # first occurrence wins
    assert body == b"BODY"


@pytest.mark.parametrize(
    "raw",
    [
        b'<?xml version="1.0"?><Envelope/>',
        b"--boundary\r\nContent-Type: text/xml\r\n\r\n<a/>\r\n--boundary--",
        b"",
        b"GET is not a start line without a version",
    ],
)
def test_bodies_without_http_framing_are_returned_unchanged(raw: bytes) -> None:
    assert split_http_message(raw) == (None, {}, raw)


def test_leading_blank_lines_before_the_start_line() -> None:
    start, headers, body = split_http_message(b"\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    assert (start, headers, body) == ("HTTP/1.1 204 No Content", {}, b"")


def test_chunked_body_is_reassembled() -> None:
    raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n<a/>\r\n3;ext=1\r\n<b/\r\n1\r\n>\r\n0\r\n\r\n"
    assert split_http_message(raw)[2] == b"<a/><b/>"


@pytest.mark.parametrize(
    "raw",
    [
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml",  # header block never ends
        b"POST / HTTP/1.1\r\nthis is not a header\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nshort",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_broken_http_framing(raw: bytes) -> None:
    with pytest.raises(MalformedMIME):
        split_http_message(raw)
