"""Sniffing: the real type of a media part, decided from its bytes, never from its label.

Theory of operation: binary formats are recognised by their magic bytes (images, then
audio/video containers), text formats by a strict decode plus structure checks (vCard
framing, a SMIL root parsed without DTDs or entities). The declared content type only
breaks ties the bytes cannot (``audio/3gpp`` vs ``video/3gpp``, text vs vCard) and
supplies the text charset. Anything else raises :class:`UnsupportedMediaError` naming the part.

Images are opened with Pillow lazily (header only) to read their size and frame count and
to catch decompression bombs early; the full decode happens in :mod:`gateway.media.adapt`.
"""

from __future__ import annotations

import codecs
import importlib
import importlib.util
import io
from dataclasses import dataclass
from typing import Final, Literal

from lxml import etree
from PIL import Image, UnidentifiedImageError

from gateway.media.errors import CorruptMediaError, MediaTooLargeError, UnsupportedMediaError


def _register_heif() -> bool:
    """Let Pillow open HEIC when the optional pillow-heif package is installed."""
    if importlib.util.find_spec("pillow_heif") is None:
        return False
    importlib.import_module("pillow_heif").register_heif_opener()
    return True


#: Whether HEIC/HEIF photos can be decoded (and so converted) in this installation.
HEIF_SUPPORTED: Final = _register_heif()

Kind = Literal["image", "audio", "video", "text", "vcard", "smil"]

#: Largest image (in pixels, per frame) we agree to decode. Pillow's own guard warns at
#: 89 MP; staying below it means Pillow never has to (its guard is process-global).
MAX_DECODE_PIXELS: Final = 50_000_000
#: Largest total decode work for an animation (frames times pixels per frame).
MAX_ANIMATION_PIXELS: Final = 200_000_000
MAX_TEXT_BYTES: Final = 64 * 1024
MAX_VCARD_BYTES: Final = 128 * 1024
MAX_SMIL_BYTES: Final = 64 * 1024

#: Types that phones render natively; the others are converted by the adapter.
NATIVE_IMAGE_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif"})

_PILLOW_FORMATS: Final = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "HEIF": "image/heic",
    "AVIF": "image/avif",
}

#: Recognisable things we refuse, so the error says what the part really is.
_REFUSED_SIGNATURES: Final = (
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"MZ", "application/x-msdownload"),
    (b"\x7fELF", "application/x-elf"),
    (b"\x1f\x8b", "application/gzip"),
    (b"Rar!", "application/vnd.rar"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
    (b"\x1aE\xdf\xa3", "video/webm"),
)

# ISO base media file format (ftyp) brands → content type family.
_BMFF_AUDIO_MP4: Final = frozenset({"M4A ", "M4B ", "M4P ", "F4A "})
_BMFF_MP4: Final = frozenset(
    {"isom", "iso2", "iso4", "iso5", "iso6", "mp41", "mp42", "avc1", "M4V ", "mmp4", "MSNV"}
)
_BMFF_HEIC: Final = frozenset({"heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"})
_BMFF_AVIF: Final = frozenset({"avif", "avis"})

_VCARD_TYPES: Final = frozenset({"text/vcard", "text/x-vcard", "text/directory"})
_SMIL_TYPES: Final = frozenset({"application/smil", "application/smil+xml"})
_UNDECLARED: Final = frozenset({"", "application/octet-stream", "binary/octet-stream"})
# Control characters that never appear in real text parts (tab, LF, FF, CR are fine).
_TEXT_CONTROLS: Final = frozenset(chr(c) for c in range(32) if c not in (9, 10, 12, 13)) | {"\x7f"}


@dataclass(frozen=True, slots=True)
class Sniffed:
    """What a part really is.

    Attributes:
        content_type: the canonical media type, without parameters (``image/jpeg``).
        kind: the family the pipeline handles it as.
        charset: for text kinds, the charset the bytes decode with (always ``utf-8`` for
            SMIL and vCard).
        width, height: image size in pixels as stored (before EXIF orientation).
        frames: number of frames (images; 1 for stills).
        mode: the Pillow mode of an image as stored (``CMYK`` needs converting).
    """

    content_type: str
    kind: Kind
    charset: str | None = None
    width: int = 0
    height: int = 0
    frames: int = 1
    mode: str = ""

    @property
    def animated(self) -> bool:
        return self.frames > 1

    @property
    def header_value(self) -> str:
        """The Content-Type header value to send for this part."""
        if self.charset and self.kind == "text":
            return f"{self.content_type}; charset={self.charset}"
        return self.content_type


def split_content_type(value: str | None) -> tuple[str, dict[str, str]]:
    """``"Text/Plain; charset=UTF-8"`` → ``("text/plain", {"charset": "UTF-8"})``."""
    if not value:
        return "", {}
    head, *rest = value.split(";")
    params: dict[str, str] = {}
    for item in rest:
        key, sep, val = item.partition("=")
        if sep:
            params[key.strip().lower()] = val.strip().strip('"')
    return head.strip().lower(), params


def sniff(
    data: bytes,
    declared_type: str | None = None,
    *,
    index: int | None = None,
    name: str | None = None,
    max_decode_pixels: int = MAX_DECODE_PIXELS,
    max_text_bytes: int = MAX_TEXT_BYTES,
    max_vcard_bytes: int = MAX_VCARD_BYTES,
) -> Sniffed:
    """Decide what ``data`` really is.

    Args:
        data: the part's bytes.
        declared_type: the Content-Type the client gave, if any (with parameters).
        index, name: identify the part in error messages.
        max_decode_pixels: images larger than this (per frame) are refused.
        max_text_bytes, max_vcard_bytes: size limits for text parts and vCards.

    Returns:
        The sniffed type.

    Raises:
        UnsupportedMediaError: not a type we carry (or HEIC without pillow-heif).
        CorruptMediaError: a supported type whose structure is broken (bad vCard, bad SMIL,
            unreadable image header).
        MediaTooLargeError: a text or vCard part over its limit.
    """
    if not data:
        raise UnsupportedMediaError("the part is empty", index=index, name=name)
    declared, params = split_content_type(declared_type)
    binary = _sniff_binary(data, declared)
    if binary is not None:
        content_type, kind = binary
        if kind == "image":
            return _sniff_image(data, content_type, max_decode_pixels, index, name)
        return Sniffed(content_type, kind)
    for signature, what in _REFUSED_SIGNATURES:
        if data.startswith(signature):
            raise UnsupportedMediaError(f"{what} is not supported in MMS", index=index, name=name)
    return _sniff_text(
        data,
        declared=declared,
        params=params,
        max_text_bytes=max_text_bytes,
        max_vcard_bytes=max_vcard_bytes,
        index=index,
        name=name,
    )


def _sniff_binary(data: bytes, declared: str) -> tuple[str, Kind] | None:
    """Magic-byte detection of images and audio/video containers."""
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "image"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "image"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif", "image"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp", "image"
    if head.startswith(b"BM") and len(head) >= 26 and head[14] in (12, 40, 52, 56, 64, 108, 124):
        # "BM" alone is too weak: also require a known DIB header size.
        return "image/bmp", "image"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff", "image"
    if head.startswith(b"#!AMR-WB\n"):
        return "audio/amr-wb", "audio"
    if head.startswith(b"#!AMR\n"):
        return "audio/amr", "audio"
    if head.startswith(b"ID3") or _is_mpeg_audio_frame(head):
        return "audio/mpeg", "audio"
    if _is_adts_frame(head):
        return "audio/aac", "audio"
    if head[4:8] == b"ftyp":
        return _bmff_type(data, declared)
    return None


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG-1/2 audio frame header: 11 sync bits, a layer, a usable bitrate and rate."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0b11, (head[1] >> 1) & 0b11
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0b11
    return version != 0b01 and layer != 0b00 and bitrate not in (0b0000, 0b1111) and rate != 0b11


def _is_adts_frame(head: bytes) -> bool:
    """An AAC ADTS frame header: 12 sync bits and layer 00."""
    return len(head) >= 7 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0


def _bmff_type(data: bytes, declared: str) -> tuple[str, Kind] | None:
    """Map the ``ftyp`` brands of an ISO BMFF file to a content type."""
    box_size = int.from_bytes(data[:4], "big")
    end = min(max(box_size, 16), 4096, len(data))
    brands = [data[8:12].decode("latin-1")]
    brands += [data[i : i + 4].decode("latin-1") for i in range(16, end - 3, 4)]
    major = brands[0]
    if major in _BMFF_HEIC or major in _BMFF_AVIF:
        return ("image/avif" if major in _BMFF_AVIF else "image/heic"), "image"
    if major.startswith("3g2"):
        return ("audio/3gpp2", "audio") if declared == "audio/3gpp2" else ("video/3gpp2", "video")
    if major.startswith("3g"):
        return ("audio/3gpp", "audio") if declared == "audio/3gpp" else ("video/3gpp", "video")
    if major in _BMFF_AUDIO_MP4:
        return "audio/mp4", "audio"
    if major in _BMFF_MP4 or any(b in _BMFF_MP4 for b in brands):
        if declared in ("audio/mp4", "audio/x-m4a", "audio/m4a"):
            return "audio/mp4", "audio"
        return "video/mp4", "video"
    return None


def _sniff_image(
    data: bytes, content_type: str, max_pixels: int, index: int | None, name: str | None
) -> Sniffed:
    """Read the image header with Pillow: size, frames, and the decompression-bomb guard."""
    try:
        with open_image(data) as image:
            fmt = _PILLOW_FORMATS.get(image.format or "")
            width, height = image.size
            # MPO: a JPEG (the picture) with secondary images (depth or gain maps) appended,
            # as phones write them. We carry the picture only.
            frames = 1 if image.format == "MPO" else int(getattr(image, "n_frames", 1))
            mode = image.mode
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnsupportedMediaError(
            f"image dimensions are too large to decode ({exc})", index=index, name=name
        ) from None
    except UnidentifiedImageError:
        if content_type in ("image/heic", "image/avif"):
            raise UnsupportedMediaError(
                f"{content_type} is not supported here (no decoder installed)",
                index=index,
                name=name,
            ) from None
        raise CorruptMediaError(
            f"{content_type} data does not decode", index=index, name=name
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptMediaError(
            f"{content_type} data does not decode ({exc})", index=index, name=name
        ) from None
    if fmt is None:
        raise UnsupportedMediaError(
            f"{content_type} decodes as unsupported {image.format}", index=index, name=name
        )
    if width * height > max_pixels or width * height * frames > MAX_ANIMATION_PIXELS:
        raise UnsupportedMediaError(
            f"image is {width}x{height}x{frames} frames, over the decode limit",
            index=index,
            name=name,
        )
    return Sniffed(fmt, "image", width=width, height=height, frames=frames, mode=mode)


def open_image(data: bytes) -> Image.Image:
    """Open image bytes lazily (header only).

    Pillow's bomb guard (``Image.MAX_IMAGE_PIXELS``) is process-global, so we never change
    it from worker threads: our lower :data:`MAX_DECODE_PIXELS` is checked by the caller,
    and Pillow's own error (or its warning, where warnings are errors) is caught there.
    """
    return Image.open(io.BytesIO(data))


def _sniff_text(
    data: bytes,
    *,
    declared: str,
    params: dict[str, str],
    max_text_bytes: int,
    max_vcard_bytes: int,
    index: int | None,
    name: str | None,
) -> Sniffed:
    charset = _charset(params.get("charset", "utf-8"), index, name)
    text = _decode_text(data, charset, index, name)
    stripped = text.lstrip("\ufeff \t\r\n")
    if declared in _VCARD_TYPES or (
        declared in _UNDECLARED and stripped[:11].upper() == "BEGIN:VCARD"
    ):
        if len(data) > max_vcard_bytes:
            raise MediaTooLargeError(
                f"vCard is over {max_vcard_bytes} bytes", index=index, name=name
            )
        validate_vcard(text, index=index, name=name)
        # Keep text/x-vcard when the client said so: older handsets only know that name.
        vcard_type = "text/x-vcard" if declared == "text/x-vcard" else "text/vcard"
        return Sniffed(vcard_type, "vcard", charset=charset)
    if declared in _SMIL_TYPES or (declared in _UNDECLARED and _looks_like_xml(stripped)):
        if len(data) > MAX_SMIL_BYTES:
            raise MediaTooLargeError(f"SMIL is over {MAX_SMIL_BYTES} bytes", index=index, name=name)
        validate_smil(data, index=index, name=name)
        return Sniffed("application/smil", "smil", charset="utf-8")
    if declared in ("text/plain", *_UNDECLARED):
        if len(data) > max_text_bytes:
            raise MediaTooLargeError(f"text is over {max_text_bytes} bytes", index=index, name=name)
        return Sniffed("text/plain", "text", charset=charset)
    raise UnsupportedMediaError(
        f"{declared or 'this content'} is not supported in MMS", index=index, name=name
    )


def _charset(value: str, index: int | None, name: str | None) -> str:
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise UnsupportedMediaError(f"unknown charset {value!r}", index=index, name=name) from None


def _decode_text(data: bytes, charset: str, index: int | None, name: str | None) -> str:
    try:
        text = data.decode(charset)
    except UnicodeDecodeError:
        raise UnsupportedMediaError(
            f"not a supported media type (and not valid {charset} text)", index=index, name=name
        ) from None
    if any(ch in _TEXT_CONTROLS for ch in text):
        raise UnsupportedMediaError(
            "not a supported media type (binary data)", index=index, name=name
        )
    return text


def _looks_like_xml(text: str) -> bool:
    return text.startswith("<?xml") or text[:5].lower() == "<smil"


def validate_vcard(text: str, *, index: int | None = None, name: str | None = None) -> None:
    """Check vCard framing: balanced BEGIN/END:VCARD, each card with a VERSION line.

    Folded lines (RFC 6350 §3.2) are unfolded first. Several cards in one part are fine.

    Raises:
        CorruptMediaError: the structure is broken.
    """
    unfolded = text.replace("\r\n", "\n").replace("\n ", "").replace("\n\t", "")
    lines = [line.strip() for line in unfolded.lstrip("\ufeff").split("\n") if line.strip()]
    cards, in_card, has_version = 0, False, False
    for line in lines:
        upper = line.upper()
        if upper == "BEGIN:VCARD":
            if in_card:
                raise CorruptMediaError("vCard: nested BEGIN:VCARD", index=index, name=name)
            in_card, has_version = True, False
        elif upper == "END:VCARD":
            if not in_card or not has_version:
                raise CorruptMediaError(
                    "vCard: END without BEGIN or VERSION", index=index, name=name
                )
            in_card, cards = False, cards + 1
        elif not in_card:
            raise CorruptMediaError(
                "vCard: content outside BEGIN/END:VCARD", index=index, name=name
            )
        elif upper.startswith("VERSION:"):
            if upper[8:].strip() not in ("2.1", "3.0", "4.0"):
                raise CorruptMediaError(f"vCard: unknown {line}", index=index, name=name)
            has_version = True
    if in_card or cards == 0:
        raise CorruptMediaError("vCard: missing END:VCARD", index=index, name=name)


def smil_parser() -> etree.XMLParser:
    """A parser that never loads DTDs, expands entities or touches the network."""
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def validate_smil(data: bytes, *, index: int | None = None, name: str | None = None) -> None:
    """Check a SMIL document: well-formed XML, no DOCTYPE, a ``<smil>`` root.

    Raises:
        CorruptMediaError: malformed XML, a DOCTYPE (entity tricks), or another root element.
    """
    # Entity tricks live in the DTD: refuse any DOCTYPE before the parser sees it, and
    # check again after parsing in case an odd encoding hid it from the byte search.
    if b"<!doctype" in data.lower():
        raise CorruptMediaError("SMIL with a DOCTYPE is refused", index=index, name=name)
    try:
        root = etree.fromstring(data, smil_parser())
    except etree.XMLSyntaxError as exc:
        raise CorruptMediaError(
            f"SMIL is not well-formed XML ({exc})", index=index, name=name
        ) from None
    if getattr(root.getroottree().docinfo, "doctype", ""):
        raise CorruptMediaError("SMIL with a DOCTYPE is refused", index=index, name=name)
    if etree.QName(root).localname.lower() != "smil":
        raise CorruptMediaError("XML part is not SMIL (root is not <smil>)", index=index, name=name)
