# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Resource limits applied while decoding untrusted MM7 input (like h11's buffer cap)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Upper bounds for one ``decode`` call; exceeding one raises its ``TooLarge`` subclass.

    Defaults suit carrier traffic: the largest MMS carriers accept is a few MB, and no
    legitimate MM7 message nests MIME more than a few levels or XML more than ~20.
    """

    max_body_bytes: int = 8 * 1024 * 1024
    max_mime_parts: int = 64
    max_mime_depth: int = 4
    max_xml_bytes: int = 1024 * 1024
    max_xml_depth: int = 48
    max_header_bytes: int = 16 * 1024


DEFAULT_LIMITS = Limits()

#: Bytes a SubmitReq's SOAP envelope and MIME framing take around its content with one
#: recipient (measured ~1.2 KB; the rest is slack), and what each further recipient adds
#: (``<To><Number>+15555550123</Number></To>`` and slack). Senders budget content with them.
SUBMIT_ENVELOPE_BYTES = 2048
RECIPIENT_ENVELOPE_BYTES = 64
