"""Fitting a whole MMS into a route's limits: sniff every part, then adapt the images.

Theory of operation:

1. Every part is sniffed (:mod:`gateway.media.sniff`); anything we do not carry raises a
   :class:`~gateway.media.errors.MediaError` naming the part. Content types are replaced
   by the sniffed ones.
2. The budget is the whole MM7 body (``max_message_bytes``) minus ``overhead_bytes`` (SOAP
   envelope and MIME framing), a per-part MIME header allowance and every non-image part
   (text, vCard, SMIL, audio, video are never altered). With ``transfer_encoding="base64"``
   the budget is counted in encoded bytes.
3. Images share what is left by water-filling: smallest first, each gets an equal share of
   what remains, and what a small image does not use goes to the bigger ones.
4. Each image is **not re-encoded** when it is in an allowed type, within the pixel cap,
   upright (no EXIF orientation to apply) and fits its share once its metadata is stripped
   losslessly (:mod:`gateway.media.strip`: EXIF, XMP, IPTC, comments go; colour profiles
   stay). Its action is then ``stripped`` (or ``unchanged`` when there was nothing to
   drop). Stills are decoded once (cheaply) to prove they are not corrupt; animations are
   checked from their block structure only, never decoded on this path.
5. Otherwise it is re-encoded (:mod:`gateway.media.still`, :mod:`gateway.media.animation`),
   which drops all metadata; so is an image whose structure the stripper cannot walk.
   Under the ``link`` and ``reject`` policies only the conversions a route requires are
   made (type, pixel cap, orientation), never size reductions. Animated GIF and WebP stay
   animated (as GIF) when the route takes GIF, else become their first frame if
   ``allow_first_frame``; an animation too big to decode raises ``MediaTooLargeError``.

When the message cannot fit, the result says ``fits=False`` and carries the original
(sniffed) parts: the caller chooses between the link fallback and HTTP 413 (policy
``adapt`` and ``reject`` → 413 ``media_too_large``, ``link`` → hosted link). Nothing here
raises for the budget, so one code path serves all three policies.

All functions are pure and thread-safe (no module state is written): the daemon runs
:func:`adapt_parts` in a thread executor.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Final, Literal

from gateway.media.animation import fit_animation, load_animation
from gateway.media.errors import UnsupportedMediaError
from gateway.media.part import Action, AdaptResult, MediaPart, Policy
from gateway.media.smil import ensure_smil, needs_smil
from gateway.media.sniff import NATIVE_IMAGE_TYPES, Sniffed, sniff
from gateway.media.still import StillSource, Where, fit_still
from gateway.media.strip import strip_metadata

if TYPE_CHECKING:
    from collections.abc import Sequence

#: MIME headers and boundary line of one part in the MM7 body (Content-Type, -ID,
#: -Transfer-Encoding, boundary): generous, so "fits" really fits.
PART_OVERHEAD_BYTES: Final = 256
#: Parts that are never converted and always allowed.
_ALWAYS_ALLOWED: Final = frozenset({"text", "smil"})
_OUTPUT_TYPES: Final = ("image/jpeg", "image/png")
#: Animated types we can keep animated (as GIF).
_ANIMATED_TYPES: Final = frozenset({"image/gif", "image/webp"})
#: "No budget": encode once with the best settings (policies that do not adapt).
_UNBOUNDED: Final = 1 << 62
#: Try a lossless strip only for images at most this many times their share: metadata is
#: rarely a large part of a file, and a 12 MP photo headed for a re-encode anyway should not
#: pay for a scan of its bytes.
_STRIP_FIT_RATIO: Final = 2


def wire_size(size: int, transfer_encoding: Literal["binary", "base64"]) -> int:
    """Bytes a part of ``size`` bytes takes in the body (base64: 76-char lines + CRLF)."""
    if transfer_encoding == "binary":
        return size
    encoded = 4 * math.ceil(size / 3)
    return encoded + 2 * (encoded // 76)


def _raw_budget(wire: int, transfer_encoding: Literal["binary", "base64"]) -> int:
    """Largest raw size whose wire size is at most ``wire``."""
    if transfer_encoding == "binary" or wire <= 0:
        return wire
    return wire * 76 // 78 * 3 // 4


def adapt_parts(
    parts: Sequence[MediaPart],
    *,
    budget_bytes: int,
    max_image_pixels: int | None = None,
    allowed_types: frozenset[str] | None = None,
    policy: Policy = "adapt",
    overhead_bytes: int = 2048,
    allow_first_frame: bool = True,
    transfer_encoding: Literal["binary", "base64"] = "binary",
    add_smil: bool = False,
) -> AdaptResult:
    """Validate ``parts`` and make them fit in an MM7 body of ``budget_bytes``.

    Args:
        parts: the message content, text parts included (they count against the budget).
        budget_bytes: the route's ``max_message_bytes`` (the whole MM7 HTTP body).
        max_image_pixels: the route's pixel cap (width x height), if any.
        allowed_types: media types the route accepts; None means JPEG, PNG, GIF plus every
            non-image type we carry. Text and SMIL are always allowed.
        policy: ``adapt`` re-encodes to fit; ``link``/``reject`` only convert what the route
            requires and report whether it fits.
        overhead_bytes: the SOAP envelope and multipart framing outside the parts.
        allow_first_frame: an animated GIF or WebP may become its first frame (a still
            JPEG/PNG) when it cannot fit animated or the route does not take GIF; when
            False such a part is ``too_large`` instead (link fallback or 413).
        transfer_encoding: how the MM7 encoder will carry the parts.
        add_smil: insert a generated SMIL part first when there are several parts and no
            SMIL (its size is counted); see :func:`gateway.media.smil.ensure_smil`.

    Returns:
        The adapted parts and what was done; ``fits`` False when it cannot fit.

    Raises:
        UnsupportedMediaError: a part of a type we do not carry or the route does not allow.
        CorruptMediaError: a part that does not decode.
        MediaTooLargeError: a text or vCard part over its own hard limit, or an animation
            that would have to be decoded and has too many frame pixels for that.
    """
    sniffed = [
        sniff(p.data, p.content_type, index=i, name=p.name or p.content_id)
        for i, p in enumerate(parts)
    ]
    typed = [
        dataclasses.replace(p, content_type=s.header_value)
        for p, s in zip(parts, sniffed, strict=True)
    ]
    for index, (part, info) in enumerate(zip(typed, sniffed, strict=True)):
        restricted = allowed_types is not None and info.kind not in ("image", *_ALWAYS_ALLOWED)
        if restricted and info.content_type not in (allowed_types or ()):
            raise UnsupportedMediaError(
                f"{info.content_type} is not accepted on this route", index=index, name=part.name
            )
    actions: list[Action] = ["unchanged"] * len(typed)
    if add_smil and needs_smil(typed):
        typed = ensure_smil(typed)
        sniffed = [sniff(typed[0].data, typed[0].content_type), *sniffed]
        actions.insert(0, "generated")
    plan = _Plan(
        typed,
        sniffed,
        actions,
        max_image_pixels=max_image_pixels,
        image_types=NATIVE_IMAGE_TYPES if allowed_types is None else allowed_types,
        policy=policy,
        allow_first_frame=allow_first_frame,
    )
    fixed = sum(
        PART_OVERHEAD_BYTES
        + (0 if s.kind == "image" else wire_size(len(p.data), transfer_encoding))
        for p, s in zip(typed, sniffed, strict=True)
    )
    result = plan.run(budget_bytes - overhead_bytes - fixed, transfer_encoding)
    return dataclasses.replace(
        result, original_bytes=sum(len(p.data) for p in parts), budget_bytes=budget_bytes
    )


@dataclasses.dataclass(slots=True, kw_only=True)
class _Image:
    index: int
    part: MediaPart
    info: Sniffed


class _Plan:
    """The per-call state of :func:`adapt_parts` (never shared between calls)."""

    def __init__(
        self,
        parts: list[MediaPart],
        sniffed: list[Sniffed],
        actions: list[Action],
        *,
        max_image_pixels: int | None,
        image_types: frozenset[str],
        policy: Policy,
        allow_first_frame: bool,
    ) -> None:
        self.parts = parts
        self.sniffed = sniffed
        self.max_pixels = max_image_pixels
        self.image_types = image_types
        self.policy = policy
        self.allow_first_frame = allow_first_frame
        self.actions = actions

    def run(self, available: int, transfer_encoding: Literal["binary", "base64"]) -> AdaptResult:
        images = sorted(
            (
                _Image(index=i, part=p, info=s)
                for i, (p, s) in enumerate(zip(self.parts, self.sniffed, strict=True))
                if s.kind == "image"
            ),
            key=lambda image: (len(image.part.data), image.index),
        )
        out = list(self.parts)
        fits = available >= 0
        remaining = available
        for position, image in enumerate(images):
            share = _raw_budget(remaining // (len(images) - position), transfer_encoding)
            adapted = self._fit(image, share)
            if adapted is None:
                self.actions[image.index] = "too_large"
                fits = False
                break
            out[image.index], self.actions[image.index] = adapted
            remaining -= wire_size(len(adapted[0].data), transfer_encoding)
        fits = fits and remaining >= 0
        if not fits:
            out = list(self.parts)
            self.actions = [
                a if a in ("generated", "too_large") else "unchanged" for a in self.actions
            ]
        return AdaptResult(
            parts=tuple(out),
            original_bytes=0,
            adapted_bytes=sum(len(p.data) for p in out),
            actions=tuple(self.actions),
            fits=fits,
            budget_bytes=0,
        )

    def _fit(self, image: _Image, share: int) -> tuple[MediaPart, Action] | None:
        """One image within ``share`` bytes: stripped, re-encoded, or None."""
        part, info = image.part, image.info
        where = Where(index=image.index, name=part.name or part.content_id)
        top = _pixel_scale(info.width, info.height, self.max_pixels)
        search = self.policy == "adapt"
        if info.animated and info.content_type in _ANIMATED_TYPES:
            animated = self._fit_animation(image, share, top=top, search=search, where=where)
            if animated is not None:
                return animated
            if not self.allow_first_frame:
                return None
        source = StillSource(part.data, info, where=where)
        if (
            info.content_type in self.image_types
            and not info.animated
            and info.mode != "CMYK"  # many handsets cannot show CMYK JPEGs
            and top >= 1
            and source.orientation == 1  # a rotation needs a re-encode, not a strip
        ):
            clean = self._strip(part.data, info, share, search)
            if clean is not None:
                if clean == part.data:
                    source.verify()
                else:
                    StillSource(clean, info, where=where).verify()
                return _passed(part, clean)
        out_type = self._output_type(source.has_alpha, where)
        encoded = fit_still(source, share, out_type=out_type, top=top, search=search)
        if encoded is None:
            return None
        if info.animated:
            action: Action = "first_frame"
        else:
            same = out_type == info.content_type and info.mode != "CMYK"
            action = "adapted" if same else "converted"
        return dataclasses.replace(part, content_type=out_type, data=encoded), action

    def _fit_animation(
        self, image: _Image, share: int, *, top: float, search: bool, where: Where
    ) -> tuple[MediaPart, Action] | None:
        """An animation kept animated in ``share`` bytes, or None (first frame or no fit).

        The cheap answer first: stripped from the raw bytes when that fits, before any
        frame is decoded. Decoding is capped (:func:`load_animation` raises over it).
        """
        part, info = image.part, image.info
        if info.content_type in self.image_types and top >= 1:
            clean = self._strip(part.data, info, share, search)
            if clean is not None:
                return _passed(part, clean)
        if "image/gif" not in self.image_types:
            return None
        anim = load_animation(part.data, where=where)
        encoded = fit_animation(anim, share if search else _UNBOUNDED, top=top)
        if encoded is None:
            return None
        action: Action = "adapted" if info.content_type == "image/gif" else "converted"
        return dataclasses.replace(part, content_type="image/gif", data=encoded), action

    @staticmethod
    def _strip(data: bytes, info: Sniffed, share: int, search: bool) -> bytes | None:
        """``data`` stripped losslessly if that is sendable in ``share`` bytes, else None."""
        if search and len(data) > _STRIP_FIT_RATIO * share:
            return None
        clean = strip_metadata(info.content_type, data)
        if clean is None or (search and len(clean) > share):
            return None
        return clean

    def _output_type(self, alpha: bool, where: Where) -> str:
        preferred = reversed(_OUTPUT_TYPES) if alpha else iter(_OUTPUT_TYPES)
        for candidate in preferred:
            if candidate in self.image_types:
                return candidate
        raise UnsupportedMediaError(
            "the route accepts no image type this image can be converted to",
            index=where.index,
            name=where.name,
        )


def _pixel_scale(width: int, height: int, max_pixels: int | None) -> float:
    """The largest scale (<= 1) whose *rounded* size stays within ``max_pixels``: the
    encoders round each edge, which can land a few pixels over the exact square root."""
    if max_pixels is None or width * height <= max_pixels:
        return 1.0
    scale = math.sqrt(max_pixels / (width * height))
    while max(1, round(width * scale)) * max(1, round(height * scale)) > max_pixels:
        scale *= 0.9995
    return scale


def _passed(part: MediaPart, clean: bytes) -> tuple[MediaPart, Action]:
    """``part`` sent without a re-encode: its stripped bytes, if stripping changed any."""
    if clean == part.data:
        return part, "unchanged"
    return dataclasses.replace(part, data=clean), "stripped"
