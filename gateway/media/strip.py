"""Lossless metadata stripping: drop EXIF, XMP, IPTC, comments without re-encoding pixels.

Theory of operation: each function walks its container byte-wise and copies every block
it keeps unchanged, so the picture is bit-for-bit the same; nothing is decoded.

- JPEG: marker segments before and between scans are filtered: APP0 ``JFIF``, APP2
  ``ICC_PROFILE`` (colour) and APP14 ``Adobe`` (needed to decode CMYK/YCCK) are kept, every
  other APPn (EXIF and XMP in APP1, MPF in APP2, IPTC in APP13, …) and COM are dropped.
  Entropy-coded data is copied untouched (it never holds a marker: 0xFF is always stuffed).
  Everything after EOI is dropped: phones append secondary images there (MPF depth maps,
  gain maps), each with its own EXIF.
- PNG: critical chunks and the ancillary chunks that change how pixels look or animate
  (``tRNS``, ``gAMA``, ``cHRM``, ``sRGB``, ``iCCP``, ``sBIT``, ``bKGD``, ``pHYs``, …) are
  kept; text (``tEXt``/``zTXt``/``iTXt``), ``eXIf``, ``tIME`` and unknown private chunks go.
- GIF: comment extensions and application extensions other than the ``NETSCAPE2.0`` /
  ``ANIMEXTS1.0`` loop block (XMP, ICC-in-GIF, vendor data) are dropped.
- WebP: ``EXIF`` and ``XMP`` chunks (and unknown chunks) are dropped and the VP8X flags
  and RIFF size fixed up.

Every function returns None when the structure is not what the format says (truncated,
bad lengths, missing end marker): the caller then re-encodes, which also strips. Formats
without a lossless stripper here (TIFF, HEIC, AVIF) return None too; BMP carries no
metadata and is returned as is.
"""

from __future__ import annotations

import re
import struct
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

# -- JPEG ---------------------------------------------------------------------------------

_SOS: Final = 0xDA
_EOI: Final = 0xD9
_COM: Final = 0xFE
#: APPn segments kept, by marker and identifier prefix.
_JPEG_KEPT_APP: Final = {
    0xE0: b"JFIF\x00",
    0xE2: b"ICC_PROFILE\x00",
    0xEE: b"Adobe",
}
#: The next marker inside entropy-coded data: 0xFF followed by anything but a stuffed zero
#: or a restart marker (another 0xFF: fill bytes before the marker). No quantifier: a
#: literal-prefix search, about 1 ms a megabyte.
_NEXT_MARKER: Final = re.compile(rb"\xff[^\x00\xd0-\xd7]")


def strip_jpeg(data: bytes) -> bytes | None:
    """``data`` without metadata segments, or None when it is not a well-formed JPEG."""
    if not data.startswith(b"\xff\xd8"):
        return None
    out = [b"\xff\xd8"]
    pos, size = 2, len(data)
    in_scan = False
    while True:
        if in_scan:
            found = _NEXT_MARKER.search(data, pos)
            if found is None:
                return None  # no EOI: truncated
            out.append(data[pos : found.start()])
            pos = found.start()
        elif pos >= size or data[pos] != 0xFF:
            return None
        while pos < size and data[pos] == 0xFF:
            pos += 1  # the marker's 0xFF and any fill bytes
        if pos >= size:
            return None
        marker, pos = data[pos], pos + 1
        if marker == _EOI:
            if not in_scan:
                return None  # no image data at all
            out.append(b"\xff\xd9")
            return b"".join(out)
        if in_scan and 0xD0 <= marker <= 0xD7:  # a restart marker after fill bytes
            out.append(bytes((0xFF, marker)))
            continue
        if marker == 0x00 or 0xD0 <= marker <= 0xD8:
            return None  # stuffing, restart or a second SOI outside entropy data
        if marker == 0x01:  # TEM: no length
            out.append(b"\xff\x01")
            continue
        if pos + 2 > size:
            return None
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > size:
            return None
        if _keep_jpeg_segment(marker, data[pos + 2 : pos + min(length, 16)]):
            out.append(bytes((0xFF, marker)))
            out.append(data[pos : pos + length])
        pos += length
        if marker == _SOS:
            in_scan = True


def _keep_jpeg_segment(marker: int, head: bytes) -> bool:
    if marker == _COM:
        return False
    if 0xE0 <= marker <= 0xEF:
        wanted = _JPEG_KEPT_APP.get(marker)
        return wanted is not None and head.startswith(wanted)
    return True


# -- PNG ----------------------------------------------------------------------------------

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
#: Ancillary chunks that affect rendering (colour, transparency, aspect, animation).
_PNG_KEPT_ANCILLARY: Final = frozenset(
    {
        b"tRNS",
        b"gAMA",
        b"cHRM",
        b"sRGB",
        b"iCCP",
        b"cICP",
        b"mDCV",
        b"cLLI",
        b"sBIT",
        b"bKGD",
        b"hIST",
        b"pHYs",
        b"acTL",
        b"fcTL",
        b"fdAT",
    }
)


def strip_png(data: bytes) -> bytes | None:
    """``data`` without text, EXIF, time or private chunks, or None when malformed."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    out = [_PNG_SIGNATURE]
    pos, size = len(_PNG_SIGNATURE), len(data)
    first = True
    while pos + 12 <= size:
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > size or not kind.isalpha():
            return None
        if first and kind != b"IHDR":
            return None
        first = False
        critical = not kind[0] & 0x20
        if critical or kind in _PNG_KEPT_ANCILLARY:
            out.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            return b"".join(out)  # anything after IEND is dropped
    return None


# -- GIF ----------------------------------------------------------------------------------

#: Application extensions kept: the animation loop count.
_GIF_KEPT_APPLICATIONS: Final = frozenset({b"NETSCAPE2.0", b"ANIMEXTS1.0"})


def strip_gif(data: bytes) -> bytes | None:
    """``data`` without comments and foreign application extensions, or None."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return None
    pos = 13 + _color_table_size(data[10])
    size = len(data)
    out = [data[:pos]]
    while pos < size:
        introducer = data[pos]
        if introducer == 0x3B:  # trailer: anything after it is dropped
            out.append(b";")
            return b"".join(out)
        if introducer == 0x21:
            if pos + 2 > size:
                return None
            label = data[pos + 1]
            end = _skip_sub_blocks(data, pos + 2)
            if end is None:
                return None
            if label == 0xFE:
                keep = False
            elif label == 0xFF:
                block = data[pos + 3 : pos + 3 + data[pos + 2]]
                keep = block in _GIF_KEPT_APPLICATIONS
            else:
                keep = True  # graphic control, plain text, unknown
        elif introducer == 0x2C:
            if pos + 11 > size:
                return None
            start = pos + 10 + _color_table_size(data[pos + 9]) + 1  # + LZW code size
            end = _skip_sub_blocks(data, start)
            if end is None:
                return None
            keep = True
        else:
            return None
        if keep:
            out.append(data[pos:end])
        pos = end
    return None  # no trailer


def _color_table_size(packed: int) -> int:
    return 3 << ((packed & 0x07) + 1) if packed & 0x80 else 0


def _skip_sub_blocks(data: bytes, pos: int) -> int | None:
    """Position after the block terminator of the sub-block chain at ``pos``, or None."""
    size = len(data)
    while pos < size:
        length = data[pos]
        pos += 1 + length
        if length == 0:
            return pos
    return None


# -- WebP ---------------------------------------------------------------------------------

_WEBP_KEPT: Final = frozenset({b"VP8X", b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF", b"ICCP"})
_VP8X_EXIF: Final = 0x08
_VP8X_XMP: Final = 0x04


def strip_webp(data: bytes) -> bytes | None:
    """``data`` without EXIF/XMP chunks, or None when the RIFF structure is broken."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    riff_end = 8 + int.from_bytes(data[4:8], "little")
    if riff_end > len(data):
        return None
    chunks: list[bytes] = []
    pos = 12
    while pos < riff_end:
        if pos + 8 > riff_end:
            return None
        kind = data[pos : pos + 4]
        length = int.from_bytes(data[pos + 4 : pos + 8], "little")
        end = pos + 8 + length + (length & 1)
        if end > riff_end:
            return None
        if kind == b"VP8X" and length >= 1:
            flags = data[pos + 8] & ~(_VP8X_EXIF | _VP8X_XMP)
            chunks.append(data[pos : pos + 8] + bytes((flags,)) + data[pos + 9 : end])
        elif kind in _WEBP_KEPT:
            chunks.append(data[pos:end])
        pos = end
    if not chunks:
        return None
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def _as_is(data: bytes) -> bytes:
    return data


_STRIPPERS: Final[dict[str, Callable[[bytes], bytes | None]]] = {
    "image/jpeg": strip_jpeg,
    "image/png": strip_png,
    "image/gif": strip_gif,
    "image/webp": strip_webp,
    "image/bmp": _as_is,
}


def strip_metadata(content_type: str, data: bytes) -> bytes | None:
    """``data`` (of the sniffed ``content_type``) without metadata, losslessly.

    Returns:
        The stripped bytes (equal to ``data`` when there was nothing to drop), or None when
        the structure is malformed or the format has no lossless stripper here: the caller
        must re-encode instead.
    """
    stripper = _STRIPPERS.get(content_type)
    return None if stripper is None else stripper(data)
