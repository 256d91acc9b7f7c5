"""Animated GIFs: keep them animated under a byte budget when that still looks like something.

Theory of operation: frames are decoded once to full composited RGB(A) images (so dropping
or resizing frames never leaves stale partial-frame pixels). :func:`fit_animation` then
walks a short list of stages, gentlest first: all frames and 256 colours, every second
frame, every second frame in 64 colours, every fourth frame in 64 colours. In each stage
the scale is found by :func:`gateway.media.search.search_scale` between the largest allowed
scale and a floor under which an animation is not worth keeping (:data:`MIN_ANIMATION_EDGE`).
A tiny probe encode per stage says whether the stage can reach the budget above that floor
before any full-size encode is spent on it. Dropped frames give their display time to the
frame kept before them, so the animation lasts as long as the original.

Decoding is the expensive part in memory: every frame is kept as a full canvas (4 bytes a
pixel), so a tiny GIF of many large, nearly empty frames would cost hundreds of megabytes.
:func:`load_animation` therefore refuses, before decoding anything, an animation whose
frames add up to more than :data:`MAX_DECODE_PIXELS` (frames x canvas width x height); the
adapter only decodes an animation at all when it cannot be sent as it is (stripped).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from PIL import Image, ImageSequence

from gateway.media.errors import CorruptMediaError, MediaTooLargeError
from gateway.media.search import search_scale
from gateway.media.sniff import open_image

if TYPE_CHECKING:
    from gateway.media.still import Where

#: (keep every n-th frame, palette colours), gentlest first.
STAGES: Final = ((1, 256), (2, 256), (2, 64), (4, 64))
#: An animation smaller than this (long edge, px) is not worth keeping animated.
MIN_ANIMATION_EDGE: Final = 120
PROBE_EDGE: Final = 160
#: Largest total decode of an animation, frames x width x height (about 160 MB of frames at
#: worst; a typical 480x360, 20-frame GIF is 3.5 million).
MAX_DECODE_PIXELS: Final = 40_000_000
_DEFAULT_DURATION: Final = 100
_RESAMPLE: Final = Image.Resampling.HAMMING


@dataclass(frozen=True, slots=True)
class Animation:
    """Decoded frames with their display times (ms) and loop count (None: play once)."""

    frames: tuple[Image.Image, ...]
    durations: tuple[int, ...]
    loop: int | None

    @property
    def size(self) -> tuple[int, int]:
        return self.frames[0].size


def load_animation(data: bytes, *, where: Where, max_pixels: int = MAX_DECODE_PIXELS) -> Animation:
    """Decode every frame of an animated GIF (or animated WebP) to full canvases.

    Raises:
        MediaTooLargeError: the frames add up to more than ``max_pixels`` (checked from the
            header and frame count, before any frame is decoded).
        CorruptMediaError: the stream does not decode.
    """
    frames: list[Image.Image] = []
    durations: list[int] = []
    try:
        with open_image(data) as image:
            width, height = image.size
            count = int(getattr(image, "n_frames", 1))
            _check_decode_size(width, height, count, max_pixels, where)
            loop = image.info.get("loop")
            for frame in ImageSequence.Iterator(image):
                # Again per frame, in case the stream holds more frames than it counted.
                _check_decode_size(width, height, len(frames) + 1, max_pixels, where)
                durations.append(int(frame.info.get("duration") or _DEFAULT_DURATION))
                transparent = frame.mode in ("RGBA", "PA", "LA") or "transparency" in frame.info
                frames.append(frame.convert("RGBA" if transparent else "RGB"))
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptMediaError(
            f"animation data does not decode ({exc})", index=where.index, name=where.name
        ) from None
    if any(f.mode == "RGBA" for f in frames):
        # One mode for all frames: RGB when the transparency is never actually used
        # (quantises faster, same look), else RGBA.
        opaque = all(f.mode == "RGB" or _alpha_min(f) == 255 for f in frames)
        frames = [f.convert("RGB" if opaque else "RGBA") for f in frames]
    for frame in frames:
        frame.info = {}  # no comments or extensions carried over
    return Animation(tuple(frames), tuple(durations), None if loop is None else int(loop))


def _check_decode_size(width: int, height: int, frames: int, limit: int, where: Where) -> None:
    total = width * height * frames
    if total > limit:
        raise MediaTooLargeError(
            f"animation of {frames} frames at {width}x{height} is {total:,} pixels to decode,"
            f" over the limit of {limit:,} (fewer or smaller frames needed)",
            index=where.index,
            name=where.name,
        )


def _alpha_min(frame: Image.Image) -> float:
    low = frame.getchannel("A").getextrema()[0]
    return float(low) if isinstance(low, (int, float)) else 0.0


def encode_animation(anim: Animation, size: tuple[int, int], *, step: int, colors: int) -> bytes:
    """Encode every ``step``-th frame at ``size`` with at most ``colors`` palette entries."""
    frames: list[Image.Image] = []
    durations: list[int] = []
    for start in range(0, len(anim.frames), step):
        frame = anim.frames[start]
        if frame.size != size:
            frame = frame.resize(size, _RESAMPLE, reducing_gap=3.0)
        # Our own fast-octree palette per frame: left to the GIF writer, resized frames
        # (thousands of colours) go through median cut, fifty times slower.
        frames.append(frame.quantize(colors, method=Image.Quantize.FASTOCTREE))
        durations.append(sum(anim.durations[start : start + step]))
    buffer = io.BytesIO()
    options: dict[str, object] = {"duration": durations}
    if anim.loop is not None:
        options["loop"] = anim.loop
    frames[0].save(
        buffer, "GIF", save_all=True, append_images=frames[1:], optimize=False, **options
    )
    return buffer.getvalue()


def fit_animation(anim: Animation, target: int, *, top: float) -> bytes | None:
    """The gentlest animated encoding of ``anim`` in at most ``target`` bytes, or None."""
    if target <= 0:
        return None  # the envelope and other parts already use up the budget
    width, height = anim.size
    long_edge = max(width, height)

    def size_at(scale: float) -> tuple[int, int]:
        return max(1, round(width * scale)), max(1, round(height * scale))

    floor = min(top, MIN_ANIMATION_EDGE / long_edge)
    probe = min(top, PROBE_EDGE / long_edge)
    for step, colors in STAGES:
        if step > 1 and len(anim.frames) <= step:
            continue  # would leave a single frame: that is the first-frame fallback

        def encode(scale: float, step: int = step, colors: int = colors) -> bytes:
            return encode_animation(anim, size_at(scale), step=step, colors=colors)

        guess = probe * math.sqrt(target / max(len(encode(probe)), 1))
        if guess < floor * 0.8:
            continue  # hopeless at this stage even at the smallest useful size
        found = search_scale(encode, target, top=top, guess=min(guess, top), floor=floor)
        if found is not None:
            return found[1]
    return None
