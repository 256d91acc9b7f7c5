# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Split a captured HTTP message (request or response) into start line, headers and body.

Sans-IO helper for tools that read MM7 traffic from files (``mm7-gateway inspect``, the
tests): captures come as whole HTTP messages, as bare MIME bodies or as bare SOAP. Only
framing is handled here; ``decode`` does the rest. Chunked transfer coding is undone;
``Content-Length`` is *not* trusted (captures are often edited by hand).
"""

from __future__ import annotations

import re
from typing import Final

from protocol.errors import MalformedMIME

_START_LINE: Final = re.compile(rb"^(?:[A-Z]+ \S+ HTTP/\d\.\d|HTTP/\d\.\d \d{3}(?: .*)?)\r?$")
_HEADER: Final = re.compile(rb"^([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*:[ \t]*(.*?)[ \t]*\r?$")


def split_http_message(raw: bytes) -> tuple[str | None, dict[str, str], bytes]:
    """Return ``(start_line, headers, body)`` for a captured HTTP message.

    ``headers`` maps lower-cased names to values (folded lines joined, first occurrence
    wins). Input that does not start with an HTTP request or status line is returned
    unchanged as the body, with ``start_line`` None and no headers.

    Raises:
        MalformedMIME: the start line is present but the header block never ends, or a
            chunked body is truncated.
    """
    text = raw.lstrip(b"\r\n")
    first_end = text.find(b"\n")
    first = text if first_end < 0 else text[:first_end]
    if not _START_LINE.match(first):
        return None, {}, raw
    start_line = first.rstrip(b"\r").decode("latin-1")
    headers: dict[str, str] = {}
    last: str | None = None
    pos = first_end + 1
    while True:
        nl = text.find(b"\n", pos)
        if nl < 0:
            if not text[pos:].strip():
                return start_line, headers, b""
            raise MalformedMIME("HTTP header block is not terminated by an empty line")
        line = text[pos:nl]
        pos = nl + 1
        if not line.rstrip(b"\r"):
            break
        if line[:1] in (b" ", b"\t") and last is not None:
            headers[last] += " " + line.strip().decode("latin-1")
            continue
        match = _HEADER.match(line)
        if match is None:
            raise MalformedMIME(f"bad HTTP header line {line[:60]!r}")
        last = match.group(1).decode("ascii").lower()
        headers.setdefault(last, match.group(2).decode("latin-1"))
    body = text[pos:]
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    return start_line, headers, body


def _dechunk(data: bytes) -> bytes:
    out: list[bytes] = []
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise MalformedMIME("truncated chunked body")
        size_text = data[pos:nl].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise MalformedMIME(f"bad chunk size {size_text[:20]!r}") from None
        pos = nl + 1
        if size == 0:
            return b"".join(out)
        if pos + size > len(data):
            raise MalformedMIME("truncated chunked body")
        out.append(data[pos : pos + size])
        pos += size
        if data[pos : pos + 2] == b"\r\n":
            pos += 2
        elif data[pos : pos + 1] == b"\n":
            pos += 1
