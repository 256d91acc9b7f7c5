"""Media pipeline exceptions: one base, three leaves, each carrying its API error code.

The API layer maps ``code`` to an HTTP status (``unsupported_media`` and ``corrupt_media``
→ 422, ``media_too_large`` → 413) and ``part`` to the error's ``field``; nothing here knows
about HTTP.
"""

from __future__ import annotations

from typing import ClassVar


class MediaError(Exception):
    """A media part that the pipeline cannot accept, or cannot make fit.

    Attributes:
        code: the machine-readable error code of the REST API.
        part: which part it is about, as the client named it (its name, or ``media[i]``).
        index: the part's position in the list given to the pipeline, when known.
    """

    code: ClassVar[str] = "media_error"

    def __init__(self, message: str, *, index: int | None = None, name: str | None = None) -> None:
        self.index = index
        self.part = part_label(index, name)
        super().__init__(f"{self.part}: {message}" if self.part else message)


class UnsupportedMediaError(MediaError):
    """The bytes are of a type we do not carry (or a type the route does not allow)."""

    code = "unsupported_media"


class CorruptMediaError(MediaError):
    """The bytes claim a supported type but do not decode (truncated, malformed)."""

    code = "corrupt_media"


class MediaTooLargeError(MediaError):
    """A part is over a hard size limit (a vCard or text limit, or the message budget)."""

    code = "media_too_large"


def part_label(index: int | None, name: str | None) -> str | None:
    """How error messages name a part: the client's name if any, else its position."""
    if name:
        return name
    return None if index is None else f"media[{index}]"
