# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""The public entry points: ``encode`` and ``decode``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol.decoder import decode_message
from protocol.encoder import encode_message
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.versions import DEFAULT_VERSION

if TYPE_CHECKING:
    from protocol.messages import Message
    from protocol.template import EnvelopeTemplates


def encode(
    message: Message,
    version: str = DEFAULT_VERSION,
    *,
    transfer_encoding: str = "binary",
    boundary: str | None = None,
    templates: EnvelopeTemplates | None = None,
) -> tuple[str, bytes]:
    """Serialise an MM7 message for an HTTP body.

    Args:
        message: any MM7 message object; ``transaction_id`` must be set.
        version: target schema version (``REL-5-MM7-1-0`` … ``REL-6-MM7-1-4``).
        transfer_encoding: ``binary`` (smallest) or ``base64`` for attachment parts.
        boundary: MIME boundary to use; by default one derived from the transaction id.
        templates: a SubmitReq's envelope from these per-shape templates (same bytes,
            less work: for a sender of many similar messages, see ``protocol.template``).

    Returns:
        ``(content_type, body)``: ``text/xml`` without attachments, otherwise
        ``multipart/related`` with ``type`` and ``start`` parameters.

    Raises:
        EncodeError: a field is set that the version does not define, or a required one
            is missing. UnsupportedVersion for an unknown ``version``.
    """
    return encode_message(
        message,
        version,
        transfer_encoding=transfer_encoding,
        boundary=boundary,
        templates=templates,
    )


def decode(
    body: bytes, content_type: str | None = None, *, limits: Limits = DEFAULT_LIMITS
) -> Message:
    """Parse an MM7 HTTP body (bare SOAP or SOAP with Attachments).

    Args:
        body: the HTTP body bytes.
        content_type: the HTTP Content-Type header, if any.
        limits: resource caps for untrusted input.

    Returns:
        The message object (its class is named after the MM7 element), with
        ``.leniencies`` listing every tolerance applied.

    Raises:
        DecodeError: (a ``ProtocolError``) with ``status_code`` to answer the peer with.
    """
    return decode_message(body, content_type, limits=limits)
