"""The media pipeline's pure core: sniff parts, adapt images to carrier limits, build SMIL.

Everything here is synchronous, CPU-bound and free of shared state, meant to run in a
thread executor. The API layer maps :class:`MediaError` ``code`` values to HTTP statuses
(``unsupported_media``/``corrupt_media`` → 422, ``media_too_large`` → 413).
"""

from gateway.media.adapt import PART_OVERHEAD_BYTES, adapt_parts, wire_size
from gateway.media.errors import (
    CorruptMediaError,
    MediaError,
    MediaTooLargeError,
    UnsupportedMediaError,
)
from gateway.media.part import Action, AdaptResult, MediaPart, Policy
from gateway.media.smil import build_smil, ensure_smil, needs_smil, with_content_ids
from gateway.media.sniff import (
    HEIF_SUPPORTED,
    NATIVE_IMAGE_TYPES,
    Sniffed,
    sniff,
    validate_smil,
    validate_vcard,
)

__all__ = [
    "HEIF_SUPPORTED",
    "NATIVE_IMAGE_TYPES",
    "PART_OVERHEAD_BYTES",
    "Action",
    "AdaptResult",
    "CorruptMediaError",
    "MediaError",
    "MediaPart",
    "MediaTooLargeError",
    "Policy",
    "Sniffed",
    "UnsupportedMediaError",
    "adapt_parts",
    "build_smil",
    "ensure_smil",
    "needs_smil",
    "sniff",
    "validate_smil",
    "validate_vcard",
    "wire_size",
    "with_content_ids",
]
