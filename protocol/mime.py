# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""SOAP with Attachments framing: tolerant ``multipart/related`` parsing and building.

Theory of operation: we do not use the stdlib ``email`` parser because MMSCs break MIME
in ways it either rejects or silently mangles (binary JPEGs without a transfer encoding,
boundaries with spaces, junk after the closing delimiter, header lines that lost their
folding). The parser works on bytes, splits on delimiter *lines*, and reports each
tolerance it applies. The builder emits strict RFC 2046 framing with CRLF line ends.
"""

from __future__ import annotations

import base64
import binascii
import functools
import quopri
import re
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, NamedTuple

from protocol.errors import HeadersTooLarge, MalformedMIME, MimeTooDeep, TooManyParts

if TYPE_CHECKING:
    from collections.abc import Iterator

    from protocol.limits import Limits

_HEADER_LINE: Final = re.compile(rb"^([A-Za-z0-9][A-Za-z0-9_-]*)[ \t]*:(.*)$")
_PARAM: Final = re.compile(r"""\s*([A-Za-z0-9_.*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)\s*(?:;|$)""")


@dataclass(slots=True)
class Part:
    """One decoded MIME part (headers lower-cased; body already transfer-decoded)."""

    headers: dict[str, str]
    body: bytes
    children: list[Part] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def content_id(self) -> str | None:
        value = self.headers.get("content-id")
        return normalise_cid(value) if value is not None else None


def normalise_cid(value: str) -> str:
    """``<abc>``, ``abc``, `` <abc> `` -> ``abc``."""
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value


def parse_content_type(value: str | None) -> tuple[str, dict[str, str]]:
    """Split a Content-Type into the lower-cased media type and its parameters.

    Parameter names are lower-cased (peers send ``Start=``/``Type=``); values lose their
    quotes. Tolerates trailing ``;``, missing quotes and stray whitespace.
    """
    if not value:
        return "", {}
    media, params = _parse_content_type(value)
    return media, dict(params)


@functools.lru_cache(maxsize=512)
def _parse_content_type(value: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    # Cached: a peer sends the same few Content-Type values over and over, and the
    # regex walk cost more than the rest of the MIME framing of a part.
    media, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        name, raw = match.group(1).lower(), match.group(2).strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1].replace('\\"', '"')
        params.setdefault(name, raw)
    return media.strip().lower(), tuple(params.items())


def strip_boundary_param(content_type: str) -> str:
    """Remove the ``boundary`` parameter from a Content-Type value, keeping the rest verbatim."""
    return re.sub(
        r';\s*boundary\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', "", content_type, flags=re.IGNORECASE
    ).strip()


def sniff_boundary(body: bytes) -> str | None:
    """Find the boundary of a multipart body whose Content-Type did not say it."""
    for raw_line in body.split(b"\n", 64)[:64]:
        line = raw_line.rstrip(b"\r").rstrip(b" \t")
        if line.startswith(b"--") and len(line) > 2:
            return line[2:].decode("latin-1")
        if line.strip() and not line.startswith(b"--"):
            continue
    return None


class _Delimiter(NamedTuple):
    start: int  # offset of the leading "--"
    end: int  # offset of the line's "\n" (or of the body's end)
    close: bool  # "--boundary--"
    trailer: bytes  # what follows the boundary (or the closing "--") on that line


def _delimiters(body: bytes, boundary: str) -> Iterator[_Delimiter]:
    """Delimiter lines for ``boundary``: ``--boundary`` at the start of a line.

    ``bytes.find`` rather than a multi-line regex: a regex anchored with ``(?m)^`` is
    tried at every offset of a 100 KB binary part and dominated decoding time.
    """
    marker = b"--" + boundary.encode("latin-1")
    size = len(marker)
    find = body.find
    pos = 0
    while (index := find(marker, pos)) >= 0:
        pos = index + size
        if index and body[index - 1] != 0x0A:  # not at a line start
            continue
        line_end = find(b"\n", pos)
        if line_end < 0:
            line_end = len(body)
        rest = body[pos:line_end].rstrip(b"\r")
        if rest[:2] == b"--":
            yield _Delimiter(index, line_end, close=True, trailer=rest[2:])
        else:
            yield _Delimiter(index, line_end, close=False, trailer=rest)


def split_multipart(
    body: bytes, boundary: str, limits: Limits, leniencies: list[str], depth: int = 1
) -> list[Part]:
    """Split a multipart body into parts; nested multiparts are split recursively.

    Raises:
        MalformedMIME: no delimiter line for ``boundary`` occurs in the body.
        TooManyParts: more parts than ``limits.max_mime_parts``.
        MimeTooDeep: nesting deeper than ``limits.max_mime_depth``.
    """
    if depth > limits.max_mime_depth:
        raise MimeTooDeep(
            f"MIME multipart nested deeper than {limits.max_mime_depth} levels",
            value=depth,
            maximum=limits.max_mime_depth,
        )
    delimiters: list[_Delimiter] = []
    closed = False
    for delimiter in _delimiters(body, boundary):
        trailer = delimiter.trailer
        if delimiter.close:
            if trailer.strip():
                leniencies.append("junk_after_close_delimiter")
            delimiters.append(delimiter)
            closed = True
            break
        if trailer.strip():
            continue  # a longer boundary that merely starts with ours
        if trailer:
            leniencies.append("delimiter_padding")
        delimiters.append(delimiter)
        if len(delimiters) > limits.max_mime_parts:
            raise TooManyParts(
                f"more than {limits.max_mime_parts} MIME parts",
                value=len(delimiters),
                maximum=limits.max_mime_parts,
            )
    if not delimiters:
        raise MalformedMIME(f"no MIME delimiter line for boundary {boundary!r} in the body")
    if delimiters[0].start > 0 and body[: delimiters[0].start].strip():
        leniencies.append("mime_preamble")
    if not closed:
        leniencies.append("missing_close_delimiter")
    parts: list[Part] = []
    ends = [d.start for d in delimiters[1:]] + ([] if closed else [len(body)])
    for opener, stop in zip(delimiters, ends, strict=False):
        end = stop
        if opener.close:
            break
        start = opener.end
        if body[start : start + 1] == b"\n":
            start += 1
        # The line break before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
        if end - start >= 2 and body[end - 2 : end] == b"\r\n":
            end -= 2
        elif end > start and body[end - 1 : end] == b"\n":
            end -= 1
        parts.append(_parse_part(body, start, end, limits, leniencies, depth))
    return parts


def _parse_part(
    data: bytes, start: int, end: int, limits: Limits, leniencies: list[str], depth: int
) -> Part:
    """Parse ``data[start:end]`` as one part; offsets avoid copying large bodies twice."""
    headers, body_start = _split_headers(data, start, end, limits, leniencies)
    raw = data[body_start:end]
    part = Part(headers=headers, body=_decode_transfer(headers, raw, leniencies))
    content_type = headers.get("content-type", "")
    if content_type[:10].lower() != "multipart/":
        return part
    media, params = parse_content_type(content_type)
    if media.startswith("multipart/"):
        boundary = params.get("boundary") or sniff_boundary(part.body)
        if boundary is None:
            raise MalformedMIME(f"nested {media} part has no boundary")
        if "boundary" not in params:
            leniencies.append("boundary_sniffed")
        part.children = split_multipart(part.body, boundary, limits, leniencies, depth + 1)
    return part


def _split_headers(
    data: bytes, start: int, end: int, limits: Limits, leniencies: list[str]
) -> tuple[dict[str, str], int]:
    """Headers of the part in ``data[start:end]`` and the offset where its body starts."""
    fast = _split_clean_headers(data, start, end, limits)
    if fast is not None:
        return fast
    return _split_odd_headers(data, start, end, limits, leniencies)


def _split_clean_headers(
    data: bytes, start: int, end: int, limits: Limits
) -> tuple[dict[str, str], int] | None:
    """Fast path for a tidy header block ended by a blank line; None means "look closer"."""
    if data.startswith(b"\r\n", start) or data.startswith(b"\n", start):
        return None  # no headers at all: the careful path reports it
    window = min(end, start + limits.max_header_bytes + 4)
    crlf = data.find(b"\n\r\n", start, window)
    # An LF-only blank line can only come first if it precedes the CRLF one.
    lf = data.find(b"\n\n", start, window if crlf < 0 else crlf + 2)
    if lf >= 0:
        block_end, body_start = lf, lf + 2
    elif crlf >= 0:
        block_end, body_start = crlf, crlf + 3
    else:
        return None
    headers: dict[str, str] = {}
    last: str | None = None
    for raw in data[start:block_end].decode("latin-1").split("\n"):
        line = raw.rstrip("\r")
        if line[:1] in (" ", "\t"):
            if last is None:
                return None
            headers[last] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not name.isascii() or not name.replace("-", "").replace("_", "").isalnum():
            return None
        last = name.lower()
        headers.setdefault(last, value.strip())  # the first occurrence wins
    return headers, body_start


def _split_odd_headers(
    data: bytes, start: int, end: int, limits: Limits, leniencies: list[str]
) -> tuple[dict[str, str], int]:
    """Line by line, for header blocks that need a tolerance (or are not there at all)."""
    headers: dict[str, str] = {}
    pos = start
    last: str | None = None
    size = 0
    while pos < end:
        nl = data.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl
        line = data[pos:line_end].rstrip(b"\r")
        next_pos = line_end + 1
        if not line.strip():
            return headers, min(next_pos, end)
        size += len(line)
        if size > limits.max_header_bytes:
            raise HeadersTooLarge(
                f"MIME part headers longer than {limits.max_header_bytes} bytes",
                value=size,
                maximum=limits.max_header_bytes,
            )
        match = _HEADER_LINE.match(line)
        if line[:1] in (b" ", b"\t") and last is not None:
            headers[last] += " " + line.strip().decode("latin-1")
        elif match:
            last = match.group(1).decode("ascii").lower()
            # The first occurrence of a repeated header wins.
            headers.setdefault(last, match.group(2).strip().decode("latin-1"))
        elif last is not None and b"=" in line:
            # e.g. ``boundary="x"`` on an unindented line after ``Content-Type: ...;``
            leniencies.append("broken_header_folding")
            headers[last] += " " + line.strip().decode("latin-1")
        else:
            break
        pos = next_pos
    if not headers:
        leniencies.append("part_without_headers")
        return {}, start
    leniencies.append("part_without_body_separator")
    return headers, min(pos, end)


def _decode_transfer(headers: dict[str, str], body: bytes, leniencies: list[str]) -> bytes:
    encoding = headers.get("content-transfer-encoding", "").strip().lower()
    if encoding == "base64":
        compact = b"".join(body.split())
        try:
            return base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            leniencies.append("invalid_base64")
            # Keep the alphabet up to the first padding, then re-pad: dropping the
            # padding and truncating to a multiple of 4 would lose the last bytes.
            cleaned = re.sub(rb"[^A-Za-z0-9+/=]", b"", compact).split(b"=", 1)[0]
            if len(cleaned) % 4 == 1:
                cleaned = cleaned[:-1]
            return base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4))
    if encoding == "quoted-printable":
        return quopri.decodestring(body)
    if encoding not in ("", "7bit", "8bit", "binary"):
        leniencies.append("unknown_transfer_encoding")
    return body


# --- building ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutPart:
    """A part to emit: headers in order, body already encoded for the wire."""

    headers: tuple[tuple[str, str], ...]
    body: bytes


def choose_boundary(seed: str, bodies: list[bytes]) -> str:
    """A boundary derived from ``seed`` that occurs in none of the part bodies.

    Deterministic (sans-IO: no randomness); a collision just appends a counter. The
    seed's CRC-32 is spelt in ``_`` and ``=``: a boundary of few distinct bytes lets the
    collision scan (and the peer's delimiter search) skip through binary parts twice as
    fast, and ``_`` never occurs in base64 text.
    """
    bits = format(zlib.crc32(seed.encode("utf-8")), "032b")
    base = "MM7=" + bits.replace("0", "_").replace("1", "=")
    candidate = base
    counter = 0
    while any(candidate.encode("ascii") in body for body in bodies):
        counter += 1
        candidate = f"{base}{counter}"
    return candidate


def build_multipart(parts: list[OutPart], boundary: str) -> bytes:
    delimiter = b"--" + boundary.encode("ascii")
    chunks: list[bytes] = []
    for part in parts:
        chunks.append(delimiter)
        chunks.append(b"\r\n")
        for name, value in part.headers:
            chunks.append(f"{name}: {value}\r\n".encode("latin-1"))
        chunks.append(b"\r\n")
        chunks.append(part.body)
        chunks.append(b"\r\n")
    chunks.append(delimiter + b"--\r\n")
    return b"".join(chunks)


def encode_base64(data: bytes) -> bytes:
    """Base64 in 76-character lines (RFC 2045 §6.8)."""
    return base64.encodebytes(data).replace(b"\n", b"\r\n").rstrip(b"\r\n")
