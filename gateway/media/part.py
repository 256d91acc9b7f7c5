"""The value types the media pipeline takes and returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: What the pipeline did to a part.
#: ``unchanged``: bytes passed through (the content type may have been corrected by sniffing);
#: ``stripped``: passed through without a re-encode, minus its metadata (EXIF, XMP, IPTC,
#: comments: the pixels are bit for bit the same);
#: ``adapted``: re-encoded in the same format (smaller, rotated, or not walkable by the stripper);
#: ``converted``: re-encoded to another format (WebP → JPEG, CMYK → RGB JPEG, …);
#: ``first_frame``: an animation replaced by its first frame;
#: ``generated``: a SMIL part the pipeline built; ``too_large``: this part could not fit.
Action = Literal[
    "unchanged", "stripped", "adapted", "converted", "first_frame", "generated", "too_large"
]

#: What a route does with media over its size limit: make it fit, send a link instead, or
#: refuse the message.
Policy = Literal["adapt", "link", "reject"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaPart:
    """One part of an MMS as the pipeline sees it.

    Attributes:
        content_type: the Content-Type header value (parameters allowed).
        data: the bytes.
        content_id: the MIME Content-ID (without angle brackets), if any.
        name: what the client called it (file name or form field), for error messages.
    """

    content_type: str
    data: bytes
    content_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AdaptResult:
    """The outcome of :func:`gateway.media.adapt_parts`.

    Attributes:
        parts: the parts to send, in the input order (a generated SMIL part first). When
            ``fits`` is false these are the sniffed originals, for the link fallback.
        original_bytes: total size of the input parts.
        adapted_bytes: total size of ``parts``.
        actions: what happened to each part of ``parts``, index for index.
        fits: whether the message fits the budget.
        budget_bytes: the message budget the parts were fitted to.
    """

    parts: tuple[MediaPart, ...]
    original_bytes: int
    adapted_bytes: int
    actions: tuple[Action, ...]
    fits: bool
    budget_bytes: int
