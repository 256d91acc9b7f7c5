"""Binary searches that land an encoder's output just under a byte budget.

Theory of operation: encoded size grows monotonically (near enough) with JPEG quality and
roughly with pixel area. :func:`search_quality` bisects integer qualities. :func:`search_scale`
bisects the scale factor geometrically, after at most a few "area law" steps (size ∝ scale²)
that place a tight bracket around the answer instead of starting from ``(0, 1]``: the
bracket is then only a few percent wide and the bisection needs two to four encodes. Both
are deterministic: same encoder, same answer.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

#: The scale search stops when the bracket is this tight (1.5 % of the edge, ~3 % of area).
SCALE_PRECISION: Final = 0.015
#: Area-law steps used to bracket the answer before bisecting.
_MAX_BRACKET_STEPS: Final = 6


def search_quality(
    encode: Callable[[int], bytes], target: int, low: int, high: int, *, start: int | None = None
) -> tuple[int, bytes] | None:
    """The highest quality in ``[low, high]`` whose encoding is at most ``target`` bytes.

    A plain bisection over the integers, whose first probe is ``start`` (the caller's
    estimate of the answer) instead of the midpoint.

    Returns:
        ``(quality, bytes)``, or None when even ``low`` is over the budget.
    """
    best: tuple[int, bytes] | None = None
    probe = min(max((low + high) // 2 if start is None else start, low), high)
    while low <= high:
        out = encode(probe)
        if len(out) <= target:
            best, low = (probe, out), probe + 1
        else:
            high = probe - 1
        probe = (low + high) // 2
    return best


def search_scale(
    encode: Callable[[float], bytes],
    target: int,
    *,
    top: float,
    guess: float,
    floor: float,
    precision: float = SCALE_PRECISION,
) -> tuple[float, bytes] | None:
    """The largest scale in ``[floor, top]`` whose encoding is at most ``target`` bytes.

    Args:
        encode: renders the image at a scale factor (1.0 = original size).
        target: the byte budget.
        top: the largest scale allowed (never above 1: we never upscale).
        guess: where to start; a good estimate saves encodes, a bad one only costs some.
        floor: the smallest scale worth sending.
        precision: stop when ``high / low <= 1 + precision``.

    Returns:
        ``(scale, bytes)``, or None when even ``floor`` does not fit.
    """
    low: tuple[float, bytes] | None = None
    high = top * (1 + 2 * precision)  # above top: "top itself not tried yet"
    scale = min(max(guess, floor), top)
    for _ in range(_MAX_BRACKET_STEPS):
        out = encode(scale)
        ratio = math.sqrt(target / max(len(out), 1))
        if len(out) <= target:
            low = (scale, out)
            if scale >= top:
                return low
            # Aim just above the area-law estimate so the bracket closes from both sides.
            following = min(top, scale * ratio * (1 + precision / 2))
        else:
            high = scale
            if scale <= floor:
                return None
            following = max(floor, scale * ratio * (1 - precision / 2))
        if low is not None and not low[0] < following < high:
            break  # the estimate left the bracket: bisection does better from here
        if low is not None and high / low[0] <= 1 + precision:
            break
        scale = following
    if low is None:
        out = encode(floor)
        if len(out) > target:
            return None
        low = (floor, out)
    high = min(high, top * (1 + 2 * precision))
    while high / low[0] > 1 + precision and low[0] < top:
        mid = min(top, math.sqrt(low[0] * high))
        out = encode(mid)
        if len(out) <= target:
            low = (mid, out)
        else:
            high = mid
    return low
