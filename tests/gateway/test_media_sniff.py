"""Sniffing: real types from bytes, refusals with the right code and part name."""

from __future__ import annotations

import random
import struct
import zlib

import pytest
from PIL import Image

from gateway.media import (
    CorruptMediaError,
    MediaError,
    MediaTooLargeError,
    UnsupportedMediaError,
    sniff,
)
from tests.gateway import media_images

VCARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jane Doe\r\nTEL;TYPE=CELL:+14165550100\r\n"
    "NOTE:a long note that is folded\r\n  over two lines\r\nEND:VCARD\r\n"
)
SMIL = (
    b'<?xml version="1.0"?><smil><head><layout><root-layout/></layout></head>'
    b'<body><par dur="5000ms"><img src="cid:a"/></par></body></smil>'
)


def _ftyp(brand: bytes, *compatible: bytes) -> bytes:
    body = brand + b"\x00\x00\x02\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + bytes(64)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims a size without carrying its pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("data", "declared", "expected", "kind"),
    [
        (b"#!AMR\n" + bytes(32), "audio/amr", "audio/amr", "audio"),
        (b"#!AMR-WB\n" + bytes(32), None, "audio/amr-wb", "audio"),
        (b"ID3\x04\x00" + bytes(32), "application/octet-stream", "audio/mpeg", "audio"),
        (b"\xff\xfb\x90\x64" + bytes(32), None, "audio/mpeg", "audio"),
        (b"\xff\xf1\x50\x80\x02\x1f\xfc" + bytes(32), None, "audio/aac", "audio"),
        (_ftyp(b"M4A ", b"isom"), "audio/x-m4a", "audio/mp4", "audio"),
        (_ftyp(b"3gp4", b"3gp4"), "video/3gpp", "video/3gpp", "video"),
        (_ftyp(b"3gp4", b"3gp4"), "audio/3gpp", "audio/3gpp", "audio"),
        (_ftyp(b"isom", b"avc1", b"mp41"), "video/mp4", "video/mp4", "video"),
        (_ftyp(b"mp42"), "audio/mp4", "audio/mp4", "audio"),
    ],
)
def test_audio_video_by_magic(data: bytes, declared: str | None, expected: str, kind: str) -> None:
    sniffed = sniff(data, declared)
    assert (sniffed.content_type, sniffed.kind) == (expected, kind)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("GIF", "image/gif"),
        ("WEBP", "image/webp"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
    ],
)
def test_images_by_content_not_label(fmt: str, expected: str) -> None:
    data = media_images.encode(media_images.photo(64, 48), fmt)
    sniffed = sniff(data, "image/jpeg")  # the label lies for all but one
    assert sniffed.content_type == expected
    assert sniffed.kind == "image"
    assert (sniffed.width, sniffed.height, sniffed.frames) == (64, 48, 1)


def test_animated_gif_frames() -> None:
    sniffed = sniff(media_images.animated_gif(64, 48, 5))
    assert sniffed.content_type == "image/gif"
    assert sniffed.animated
    assert sniffed.frames == 5


def test_mpo_is_a_jpeg_still() -> None:
    # Phones append depth or gain maps to their JPEGs (MPF); Pillow calls that MPO.
    sniffed = sniff(media_images.mpo(media_images.photo(64, 48)), "image/jpeg")
    assert (sniffed.content_type, sniffed.frames, sniffed.animated) == ("image/jpeg", 1, False)


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "application/pdf"),
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + bytes(50), "msdownload"),
        (b"\x7fELF\x02\x01\x01" + bytes(50), "elf"),
        (b"PK\x03\x04\x14\x00" + bytes(50), "zip"),
        (random.Random(7).randbytes(4096), "not a supported media type"),
    ],
)
def test_unsupported_is_refused_with_part_name(data: bytes, what: str) -> None:
    with pytest.raises(UnsupportedMediaError) as caught:
        sniff(data, "application/octet-stream", index=3, name="file.bin")
    error = caught.value
    assert error.code == "unsupported_media"
    assert error.part == "file.bin"
    assert error.index == 3
    assert what in str(error)
    assert "file.bin" in str(error)


def test_unnamed_part_is_named_by_index() -> None:
    with pytest.raises(MediaError) as caught:
        sniff(b"%PDF-1.4", "application/pdf", index=2)
    assert caught.value.part == "media[2]"
    assert str(caught.value).startswith("media[2]:")


def test_heic_without_decoder_is_unsupported() -> None:
    with pytest.raises(UnsupportedMediaError, match="image/heic"):
        sniff(_ftyp(b"heic", b"mif1", b"heic"), "image/heic")


def test_truncated_header_is_corrupt() -> None:
    data = media_images.encode(media_images.photo(64, 48), "PNG")
    with pytest.raises(CorruptMediaError) as caught:
        sniff(data[:20], "image/png")
    assert caught.value.code == "corrupt_media"


@pytest.mark.parametrize(("width", "height"), [(60_000, 60_000), (8_000, 8_000)])
def test_decompression_bomb_is_refused(width: int, height: int) -> None:
    with pytest.raises(UnsupportedMediaError, match="decode"):
        sniff(_png_header(width, height), "image/png")
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # Pillow's global guard left alone


@pytest.mark.parametrize("declared", ["text/vcard", "text/x-vcard", None])
def test_vcard_ok(declared: str | None) -> None:
    sniffed = sniff(VCARD.encode(), declared)
    assert sniffed.kind == "vcard"
    assert sniffed.content_type == ("text/x-vcard" if declared == "text/x-vcard" else "text/vcard")


@pytest.mark.parametrize(
    "text",
    [
        VCARD.replace("END:VCARD\r\n", ""),
        VCARD.replace("VERSION:3.0\r\n", ""),
        VCARD.replace("VERSION:3.0", "VERSION:9.9"),
        "FN:no frame\r\n" + VCARD,
        VCARD.replace("FN:Jane Doe", "BEGIN:VCARD"),
    ],
)
def test_vcard_bad(text: str) -> None:
    with pytest.raises(CorruptMediaError) as caught:
        sniff(text.encode(), "text/vcard", index=0)
    assert caught.value.code == "corrupt_media"


def test_vcard_too_large() -> None:
    big = VCARD.replace("FN:Jane Doe", "NOTE:" + "x" * 200_000)
    with pytest.raises(MediaTooLargeError) as caught:
        sniff(big.encode(), "text/vcard")
    assert caught.value.code == "media_too_large"


def test_plain_text_charsets() -> None:
    assert sniff("héllo".encode(), "text/plain").header_value == "text/plain; charset=utf-8"
    latin = sniff("héllo".encode("latin-1"), "text/plain; charset=ISO-8859-1")
    assert latin.charset == "iso8859-1"
    assert latin.kind == "text"
    with pytest.raises(UnsupportedMediaError):
        sniff("héllo".encode("latin-1"), "text/plain")  # not UTF-8
    with pytest.raises(UnsupportedMediaError, match="charset"):
        sniff(b"hello", "text/plain; charset=klingon")
    with pytest.raises(UnsupportedMediaError):
        sniff(b"hello\x00\x01world", "text/plain")
    with pytest.raises(MediaTooLargeError):
        sniff(b"a" * 70_000, "text/plain")


def test_smil_ok_and_sniffed_without_label() -> None:
    assert sniff(SMIL, "application/smil").kind == "smil"
    assert sniff(SMIL).content_type == "application/smil"


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?><!DOCTYPE smil [<!ENTITY a "aaaa">]><smil>&a;</smil>',
        b'<!DOCTYPE smil SYSTEM "http://127.0.0.1:1/x.dtd"><smil/>',
        b"<html><body/></html>",
        b"<smil><body>",
    ],
)
def test_smil_bad(data: bytes) -> None:
    with pytest.raises(CorruptMediaError):
        sniff(data, "application/smil")


def test_other_declared_types_are_refused() -> None:
    with pytest.raises(UnsupportedMediaError, match="text/html"):
        sniff(b"<p>hi</p>", "text/html")
    with pytest.raises(UnsupportedMediaError, match="empty"):
        sniff(b"", "image/png")
