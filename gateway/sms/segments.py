"""How many SMS segments a text takes, and fitting a text plus a link into a few of them.

GSM 03.38: a text made only of the default alphabet goes as GSM-7 (160 septets in one
SMS, 153 per segment of a concatenated one: the UDH takes the rest); characters of the
extension table cost two septets (escape + char) and an escape pair is never split across
segments. Anything else goes as UCS-2 (70 code units alone, 67 per segment); characters
outside the BMP are surrogate pairs, two units that are never split either. Pure
functions: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Coding = Literal["gsm7", "ucs2"]

_GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION: Final = frozenset("^{}\\[~]|€\f")
#: (single SMS, per segment of a concatenated SMS), in septets or UCS-2 code units.
_LIMITS: Final = {"gsm7": (160, 153), "ucs2": (70, 67)}


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    coding: Coding
    #: septets (GSM-7) or UTF-16 code units (UCS-2)
    units: int
    segments: int


def coding_of(text: str) -> Coding:
    """``gsm7`` when every character is in the GSM 03.38 default or extension table."""
    return "gsm7" if all(c in _GSM7_BASIC or c in _GSM7_EXTENSION for c in text) else "ucs2"


def _unit_sizes(text: str, coding: Coding) -> list[int]:
    """Cost of each character, in the units of ``coding`` (never split)."""
    if coding == "gsm7":
        return [2 if c in _GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def _count(sizes: list[int], coding: Coding) -> int:
    single, per_segment = _LIMITS[coding]
    total = sum(sizes)
    if total <= single:
        return 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > per_segment:  # a pair that would straddle starts a new segment
            segments, used = segments + 1, 0
        used += size
    return segments


def segment_info(text: str) -> SegmentInfo:
    """Coding, length in units and number of SMS segments of ``text``."""
    coding = coding_of(text)
    sizes = _unit_sizes(text, coding)
    return SegmentInfo(coding, sum(sizes), _count(sizes, coding))


def compose(body: str, link: str | None, max_segments: int) -> str:
    """``body``, a space and ``link``, in at most ``max_segments`` segments.

    The link is never cut: the body is shortened (ending in an ellipsis) until the whole
    fits; a link that does not fit alone is sent alone. Shortening to GSM-7 characters
    may also let a UCS-2 text become GSM-7 again; both codings are tried.
    """
    whole = f"{body} {link}" if body and link else body or link or ""
    if segment_info(whole).segments <= max_segments or not body:
        return whole
    suffix = f" {link}" if link else ""
    ellipsis = "…" if coding_of(body + suffix) == "ucs2" else "..."
    low, high, best = 0, len(body), None
    while low <= high:  # longest prefix of the body that still fits
        middle = (low + high) // 2
        candidate = body[:middle].rstrip() + ellipsis + suffix
        if segment_info(candidate).segments <= max_segments:
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    return best if best is not None else (link or "")
