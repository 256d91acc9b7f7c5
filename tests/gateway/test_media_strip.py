"""Lossless metadata stripping, format by format: what goes, what stays, what is refused."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageSequence

from gateway.media.strip import strip_gif, strip_jpeg, strip_metadata, strip_png, strip_webp
from tests.gateway import media_images
from tests.gateway.media_images import SENTINEL, metadata_left


def _markers(data: bytes) -> list[tuple[int, bytes]]:
    """The JPEG marker segments before the first scan: (marker, first payload bytes)."""
    out, pos = [], 2
    while data[pos + 1] != 0xDA:
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        out.append((data[pos + 1], data[pos + 4 : pos + 10]))
        pos += 2 + length
    return out


def _pixels(data: bytes) -> list[bytes]:
    with Image.open(io.BytesIO(data)) as image:
        return [frame.convert("RGBA").tobytes() for frame in ImageSequence.Iterator(image)]


def test_jpeg_keeps_jfif_icc_and_adobe_only() -> None:
    data = media_images.tagged_jpeg(media_images.photo(64, 48))
    kinds = {marker for marker, _ in _markers(data)}
    assert {0xE1, 0xEC, 0xED, 0xFE} <= kinds  # EXIF/XMP, APP12, IPTC, comment
    clean = strip_jpeg(data)
    assert clean is not None
    apps = [(m, head) for m, head in _markers(clean) if 0xE0 <= m <= 0xEF or m == 0xFE]
    assert apps == [(0xE0, b"JFIF\x00\x01"), (0xE2, b"ICC_PR")]
    assert clean.endswith(b"\xff\xd9")
    assert SENTINEL not in clean
    assert _pixels(clean) == _pixels(data)


def test_cmyk_jpeg_keeps_its_adobe_segment() -> None:
    data = media_images.jpeg(
        media_images.photo(64, 48).convert("CMYK"), exif=media_images.exif().tobytes()
    )
    clean = strip_jpeg(data)
    assert clean is not None
    assert any(m == 0xEE and head.startswith(b"Adobe") for m, head in _markers(clean))
    with Image.open(io.BytesIO(clean)) as image:
        assert image.mode == "CMYK"
    assert _pixels(clean) == _pixels(data)
    assert metadata_left(clean) == []


def test_clean_files_come_back_equal() -> None:
    photo = media_images.photo(64, 48)
    for content_type, fmt in (("image/jpeg", "JPEG"), ("image/png", "PNG"), ("image/gif", "GIF")):
        data = media_images.encode(photo, fmt)
        assert strip_metadata(content_type, data) == data, fmt
    gif = media_images.animated_gif(64, 48, 4)
    assert strip_gif(gif) == gif  # the NETSCAPE2.0 loop block stays


def test_png_keeps_palette_and_transparency() -> None:
    image = media_images.photo(64, 48).quantize(16)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=3, icc_profile=media_images.srgb_icc())
    data = buffer.getvalue()
    tagged = media_images.tagged_png(image)
    for source in (data, tagged):
        clean = strip_png(source)
        assert clean is not None
        with Image.open(io.BytesIO(clean)) as out:
            assert out.mode == "P"
            assert out.info.get("transparency") == (3 if source is data else None)
        assert _pixels(clean) == _pixels(source)
        assert metadata_left(clean) == []
    assert strip_png(data) == data


def test_gif_drops_comments_and_foreign_applications() -> None:
    data = media_images.tagged_gif(64, 48, 4)
    assert b"XMP DataXMP" in data
    clean = strip_gif(data)
    assert clean is not None
    assert b"XMP DataXMP" not in clean
    assert b"NETSCAPE2.0" in clean
    assert SENTINEL not in clean
    assert _pixels(clean) == _pixels(data)


def test_webp_clears_its_metadata_flags() -> None:
    data = media_images.tagged_webp(media_images.photo(64, 48))
    clean = strip_webp(data)
    assert clean is not None
    assert clean[12:16] == b"VP8X"
    assert clean[20] & 0x0C == 0  # no EXIF, no XMP flag
    assert clean[20] & 0x20  # ICC kept
    assert int.from_bytes(clean[4:8], "little") == len(clean) - 8
    assert b"EXIF" not in clean
    assert _pixels(clean) == _pixels(data)
    assert metadata_left(clean) == []


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("image/jpeg", media_images.jpeg(media_images.photo(64, 48))[:-300]),  # no EOI
        ("image/jpeg", b"\xff\xd8\xff\xe1\xff\xff" + bytes(10)),  # length past the end
        ("image/jpeg", b"\xff\xd8\xff\xd9"),  # no image
        ("image/png", media_images.encode(media_images.photo(64, 48), "PNG")[:-12]),  # no IEND
        ("image/png", b"\x89PNG\r\n\x1a\n" + bytes(12)),  # no IHDR
        ("image/gif", media_images.animated_gif(64, 48, 3)[:-1]),  # no trailer
        ("image/gif", b"GIF89a" + bytes(7) + b"\x99"),  # unknown block
        ("image/webp", b"RIFF\xff\xff\x00\x00WEBPVP8 "),  # RIFF size past the end
        ("image/tiff", media_images.tiff(media_images.photo(8, 8))),  # no lossless stripper
        ("image/heic", b"\x00\x00\x00\x18ftypheic"),
    ],
)
def test_malformed_or_unstrippable_is_none(content_type: str, data: bytes) -> None:
    assert strip_metadata(content_type, data) is None


def test_bmp_has_nothing_to_strip() -> None:
    data = media_images.encode(media_images.photo(16, 16), "BMP")
    assert strip_metadata("image/bmp", data) == data
