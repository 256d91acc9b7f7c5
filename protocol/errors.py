# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Exception hierarchy of the MM7 codec.

``ProtocolError`` is the root. ``DecodeError`` means the peer sent something we cannot
read (answer it with a fault carrying ``status_code``); ``EncodeError`` means *we* were
asked to build something the target schema forbids (a bug on our side, never the peer's).
Every error carries the MM7 status code the I/O layer should answer with, like h11's
``error_status_hint``.
"""

from __future__ import annotations

from typing import ClassVar


class ProtocolError(Exception):
    """Root of every error raised by ``protocol``."""

    #: MM7 status code that describes this error to a peer.
    status_code: int = 4004

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code

    def __str__(self) -> str:
        return self.message


class DecodeError(ProtocolError):
    """The peer's bytes cannot be decoded into an MM7 message."""

    status_code = 2007  # message format corrupt


class MalformedXML(DecodeError):  # noqa: N818 - public names (DESIGN.md §9)
    """The SOAP part is not well-formed XML (or uses DTDs/entities, which we refuse)."""

    status_code = 2007


class MalformedMIME(DecodeError):  # noqa: N818 - public names (DESIGN.md §9)
    """The MIME framing cannot be parsed (no boundary found, truncated parts, ...)."""

    status_code = 2007


class NotSOAP(DecodeError):  # noqa: N818 - public names (DESIGN.md §9)
    """Well-formed XML, but no SOAP Envelope/Body holding an MM7 message."""

    status_code = 2007


class UnknownMessageType(DecodeError):  # noqa: N818 - public names (DESIGN.md §9)
    """The SOAP Body holds an element that is not an MM7 message we know."""

    status_code = 4003  # unsupported operation


class MissingElement(DecodeError):  # noqa: N818 - public names (DESIGN.md §9)
    """A mandatory element that even a tolerant reader needs is absent."""

    status_code = 4004  # validation error


class InvalidValue(DecodeError):  # noqa: N818 - public names (DESIGN.md §9)
    """An element holds a value that cannot be interpreted (e.g. a non-numeric StatusCode)."""

    status_code = 4004


class TooLarge(DecodeError):  # noqa: N818 - public names (DESIGN.md §9)
    """The input exceeds a configured limit (body size, MIME parts, nesting, XML depth).

    Each limit raises its own subclass (``BodyTooLarge``, ``TooManyParts``, …), so a
    caller can tell them apart by type; ``except TooLarge`` still catches them all.
    ``limit`` names the ``Limits`` field that was exceeded.
    """

    status_code = 2007
    #: The ``Limits`` field a subclass stands for (its default ``limit``).
    LIMIT: ClassVar[str] = ""

    def __init__(self, message: str, *, value: int, maximum: int, limit: str | None = None) -> None:
        super().__init__(message)
        self.limit = limit or self.LIMIT
        self.value = value
        self.maximum = maximum


class BodyTooLarge(TooLarge):
    """The whole body is longer than ``Limits.max_body_bytes``."""

    LIMIT = "max_body_bytes"


class XmlTooLarge(TooLarge):
    """The SOAP part is longer than ``Limits.max_xml_bytes``."""

    LIMIT = "max_xml_bytes"


class XmlTooDeep(TooLarge):
    """XML elements nest deeper than ``Limits.max_xml_depth``."""

    LIMIT = "max_xml_depth"


class MimeTooDeep(TooLarge):
    """Multiparts nest deeper than ``Limits.max_mime_depth``."""

    LIMIT = "max_mime_depth"


class TooManyParts(TooLarge):
    """A multipart holds more parts than ``Limits.max_mime_parts``."""

    LIMIT = "max_mime_parts"


class HeadersTooLarge(TooLarge):
    """A MIME part's header block is longer than ``Limits.max_header_bytes``."""

    LIMIT = "max_header_bytes"


class EncodeError(ProtocolError):
    """We were asked to encode something the target MM7 version does not allow."""

    status_code = 4004


class InvalidDate(EncodeError):  # noqa: N818 - named like its DecodeError siblings
    """A date given as text that is neither an xs:dateTime nor an xs:duration (e.g. a
    decoded date kept raw because it did not parse): writing it would be schema-invalid."""


class UnsupportedVersion(EncodeError):  # noqa: N818 - public names (DESIGN.md §9)
    """The requested MM7 schema version is not one we can emit."""

    status_code = 4002
