"""Still images: decode once (cheaply), normalise, and re-encode to fit a byte budget.

Theory of operation: a :class:`StillSource` decodes the image at the smallest size the
search needs (JPEG DCT scaling through ``draft()``: a 12 MP photo headed for 300 KB is
decoded at 1/2 or 1/4 scale, several times faster), applies the EXIF orientation, converts
to sRGB RGB/L (CMYK and ICC-tagged images through LittleCMS) or RGBA when the alpha channel
is actually used, and drops every piece of metadata (EXIF, ICC, comments, XMP).

:func:`fit_still` then encodes: JPEG with a quality search in
[:data:`MIN_QUALITY`, :data:`MAX_QUALITY`] at the largest allowed scale, or, when even
:data:`MIN_QUALITY` is too big there, a scale search at :data:`MIN_QUALITY` (we prefer fewer
pixels over blockier ones: phones show MMS images at screen size anyway). PNG (for images
whose transparency matters): truecolour, then a 256-colour palette, then a scale search on
the palette image. A small probe encode seeds every search with an area-law estimate.
Encoder settings are fixed, so the output is a pure function of the input.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from PIL import Image, ImageCms, ImageOps

from gateway.media.errors import CorruptMediaError, UnsupportedMediaError
from gateway.media.search import search_quality, search_scale
from gateway.media.sniff import open_image

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.media.sniff import Sniffed

MIN_QUALITY: Final = 70
MAX_QUALITY: Final = 90
#: Where the quality search starts, and the quality the scale estimate is made for.
REFERENCE_QUALITY: Final = 80
#: Long edge of the probe image whose encoded size seeds the searches.
PROBE_EDGE: Final = 480
#: Accept an output this much smaller than the estimate rather than decode again larger.
DECODE_SLACK: Final = 1.3
#: Below this long edge an image is not worth sending.
MIN_EDGE: Final = 64
_ORIENTATION_TAG: Final = 0x0112
#: Pillow's names for a JPEG stream (MPO: a JPEG with secondary images appended).
_JPEG_FORMATS: Final = ("JPEG", "MPO")
_RESAMPLE: Final = Image.Resampling.BICUBIC


@dataclass(frozen=True, slots=True)
class Where:
    """Identifies the part in errors."""

    index: int | None = None
    name: str | None = None


class StillSource:
    """One still image, decoded lazily at the scales the search asks for."""

    def __init__(self, data: bytes, sniffed: Sniffed, *, where: Where) -> None:
        self._data = data
        self._where = where
        self._raw_size = (sniffed.width, sniffed.height)
        with open_image(data) as image:
            self.orientation = int(image.getexif().get(_ORIENTATION_TAG, 1) or 1)
            self._format = image.format
        width, height = self._raw_size
        self.size = (height, width) if self.orientation in (5, 6, 7, 8) else (width, height)
        self._base: Image.Image | None = None
        self._base_scale = 0.0
        self._cache: dict[tuple[int, int], Image.Image] = {}

    @property
    def pixels(self) -> int:
        return self.size[0] * self.size[1]

    @property
    def long_edge(self) -> int:
        return max(self.size)

    @property
    def has_alpha(self) -> bool:
        """Whether transparency is actually used (decodes the image if needed)."""
        return self._format not in _JPEG_FORMATS and self._base_for(0.0).mode == "RGBA"

    @property
    def decoded_scale(self) -> float:
        """Scale of the image decoded so far (0 before any decode)."""
        return self._base_scale

    def decode_hint(self, target: int) -> float:
        """A scale the output will probably not exceed, guessed before decoding anything.

        A re-encode at :data:`REFERENCE_QUALITY` is assumed to take at least half the bytes
        per pixel of the source file (true of camera JPEGs, saved at quality 85-95). Too
        low a guess costs a second decode later, never a wrong result.
        """
        return math.sqrt(target / (0.5 * max(len(self._data), 1)))

    def dimensions(self, scale: float) -> tuple[int, int]:
        width, height = self.size
        return max(1, round(width * scale)), max(1, round(height * scale))

    def at(self, scale: float) -> Image.Image:
        """The normalised image resized to ``scale`` of its full (oriented) size."""
        size = self.dimensions(min(scale, 1.0))
        if size not in self._cache:
            base = self._base_for(scale)
            image = base if base.size == size else base.resize(size, _RESAMPLE, reducing_gap=3.0)
            self._cache = {size: image}  # keep one: the search moves on, memory does not pile up
        return self._cache[size]

    def prepare(self, scale: float) -> None:
        """Decode now at a size good for scales up to ``scale`` (one decode, not several)."""
        self._base_for(min(scale, 1.0))

    def probe(self, max_edge: int) -> tuple[float, Image.Image]:
        """A cheap small version (integer box reduction of the decoded image) and its scale.

        Only for estimates: the images we send always come from :meth:`at`.
        """
        base = self._base_for(0.0)
        factor = max(1, max(base.size) // max_edge)
        small = base.reduce(factor) if factor > 1 else base
        return small.size[0] / self.size[0], small

    def verify(self) -> None:
        """Decode the whole stream (at the cheapest scale) to prove it is not corrupt."""
        self._base_for(0.0)

    def _base_for(self, scale: float) -> Image.Image:
        if self._base is None or self._base_scale < scale:
            self._base = self._decode(scale)
            self._base_scale = self._base.size[0] / self.size[0]
        return self._base

    def _decode(self, scale: float) -> Image.Image:
        with open_image(self._data) as image:
            try:
                if image.format in _JPEG_FORMATS and scale < 1:
                    width, height = self._raw_size
                    wanted = (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale)))
                    image.draft(image.mode, wanted)
                image.load()
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise CorruptMediaError(
                    f"image data does not decode ({exc})",
                    index=self._where.index,
                    name=self._where.name,
                ) from None
            ImageOps.exif_transpose(image, in_place=True)  # in place: no 12 MP copy
            normal = _normalise(image, self._where)
        normal.info = {}  # no EXIF, ICC, XMP or comment ever reaches the encoder
        return normal


def _normalise(image: Image.Image, where: Where) -> Image.Image:
    """RGB/L in sRGB, or RGBA when the alpha channel is really used."""
    transparent = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or ("transparency" in image.info)
    if transparent:
        rgba = image.convert("RGBA")
        alpha_min = rgba.getchannel("A").getextrema()[0]
        if isinstance(alpha_min, (int, float)) and alpha_min < 255:
            return rgba
        image = rgba.convert("RGB")
    if image.mode == "1":
        return image.convert("L")
    if image.mode == "L":
        return image
    icc = image.info.get("icc_profile")
    if icc and image.mode in ("RGB", "CMYK"):
        converted = _to_srgb(image, icc)
        if converted is not None:
            return converted
    if image.mode == "RGB":
        return image
    try:
        return image.convert("RGB")
    except ValueError:
        raise UnsupportedMediaError(
            f"image mode {image.mode} is not supported", index=where.index, name=where.name
        ) from None


def _to_srgb(image: Image.Image, icc: bytes) -> Image.Image | None:
    """Convert through the embedded colour profile, so CMYK and wide-gamut look right."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        return ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None  # a broken profile: the plain conversion is still a fine picture


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """Baseline JPEG, 4:2:0, no metadata, standard Huffman tables.

    Optimised tables would save about 4 % but cost 2.5 times the encode time.
    """
    if image.mode == "RGBA":
        image = _flatten(image)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=False, subsampling=2)
    return buffer.getvalue()


def encode_png(image: Image.Image, *, palette: bool) -> bytes:
    """PNG, truecolour or a 256-colour palette (fast octree, which keeps the alpha)."""
    if palette:
        image = image.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """Composite onto white: a JPEG cannot carry transparency."""
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background


def fit_still(
    source: StillSource, target: int, *, out_type: str, top: float, search: bool
) -> bytes | None:
    """Encode ``source`` as ``out_type`` in at most ``target`` bytes.

    Args:
        source: the image.
        target: the byte budget for this part.
        out_type: ``image/jpeg`` or ``image/png``.
        top: the largest scale allowed (1.0, or less under a pixel cap).
        search: False to encode once at ``top`` with the best settings (conversion only,
            for routes whose policy is not to adapt): the result may then be over budget.

    Returns:
        The encoded bytes, or None when it cannot fit.
    """
    if search and target <= 0:
        return None  # the envelope and other parts already use up the budget
    floor = min(top, MIN_EDGE / source.long_edge)
    if not search:
        if out_type == "image/png":
            return encode_png(source.at(top), palette=False)
        return encode_jpeg(source.at(top), MAX_QUALITY)
    if out_type == "image/png":
        return _fit_png(source, target, top=top, floor=floor)
    return _fit_jpeg(source, target, top=top, floor=floor)


def _fit_jpeg(source: StillSource, target: int, *, top: float, floor: float) -> bytes | None:
    """Estimate the scale, then bisect the quality there; bisect the scale if that fails."""
    source.prepare(min(top, source.decode_hint(target)))
    estimate = _estimate_scale(source, target, lambda image: encode_jpeg(image, REFERENCE_QUALITY))
    if source.decoded_scale < estimate <= source.decoded_scale * DECODE_SLACK:
        # A little more resolution is not worth a second, larger decode: the quality
        # search spends the extra budget instead.
        top = min(top, source.decoded_scale)
    estimate = min(top, estimate)
    sizes: dict[int, int] = {}

    def at_estimate(quality: int) -> bytes:
        out = encode_jpeg(source.at(estimate), quality)
        sizes[quality] = len(out)
        return out

    found = search_quality(at_estimate, target, MIN_QUALITY, MAX_QUALITY, start=REFERENCE_QUALITY)
    if found is not None and (found[0] < MAX_QUALITY or estimate >= top):
        return found[1]
    # The estimate was off: grow (best quality fits with room) or shrink (worst does not)
    # by bisecting the scale, at the reference quality when growing, the lowest when not.
    quality = REFERENCE_QUALITY if found is not None else MIN_QUALITY
    measured = sizes.get(quality) or len(at_estimate(quality))
    guess = estimate * math.sqrt(target / max(measured, 1))
    scaled = search_scale(
        lambda s: encode_jpeg(source.at(s), quality),
        target,
        top=top if found is not None else estimate,
        guess=guess,
        floor=estimate if found is not None else floor,
    )
    if scaled is not None:
        return scaled[1]
    return None if found is None else found[1]


def _estimate_scale(
    source: StillSource, target: int, encode: Callable[[Image.Image], bytes]
) -> float:
    """The scale at which ``encode`` gives ``target`` bytes, from two small probes.

    Encoded size grows like ``scale ** alpha``: alpha is 2 for noise and less for photos
    (smaller images carry more detail per pixel). Two probes an octave apart measure it.
    """
    small_scale, small = source.probe(PROBE_EDGE)
    large_scale, large = source.probe(2 * PROBE_EDGE)
    small_size, large_size = len(encode(small)), max(len(encode(large)), 1)
    alpha = 2.0
    if large_scale > small_scale * 1.2 and large_size > small_size > 0:
        alpha = math.log(large_size / small_size) / math.log(large_scale / small_scale)
        alpha = min(max(alpha, 1.2), 2.2)
    return float(large_scale * (target / large_size) ** (1 / alpha))


def _fit_png(source: StillSource, target: int, *, top: float, floor: float) -> bytes | None:
    """Truecolour, then palette at full size; then bisect the scale of the palette image."""
    guess = _estimate_scale(source, target, lambda image: encode_png(image, palette=True))
    if guess >= top:
        full = encode_png(source.at(top), palette=False)
        if len(full) <= target:
            return full
        quantized = encode_png(source.at(top), palette=True)
        if len(quantized) <= target:
            return quantized
    scaled = search_scale(
        lambda s: encode_png(source.at(s), palette=True), target, top=top, guess=guess, floor=floor
    )
    return None if scaled is None else scaled[1]
