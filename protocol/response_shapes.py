# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""SubmitRsp answers from per-shape memos: the full decoder's result, a fraction of the work.

Theory of operation: an MMSC answers every SubmitReq with the same bytes but for two
values, the TransactionID we sent and the MessageID it assigned. The first answer of a
*shape* (the body with those two values cut out, and its Content-Type) goes through the
ordinary, hardened :func:`protocol.decoder.decode_message`; if that gives a SubmitRsp
whose two fields are exactly the values cut out, the decoded message is remembered, and
later answers of the shape are that message with their own two values. No XML is parsed
for them: their bytes equal bytes the hardened parser already accepted, except for the
values, which are restricted to characters that mean nothing in XML (no markup, no
entity references, no whitespace the decoder would strip), so the decoder would read
them verbatim.

Whatever the memo cannot vouch for (no TransactionID, either name found in more than
one element or a value with other characters, comments, a body over
:data:`MAX_BODY_BYTES`, another message type, values the decoder changed) takes the
ordinary path, every time.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Final

from protocol.decoder import decode_message
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.messages import SubmitRsp

if TYPE_CHECKING:
    from protocol.messages import Message

#: Distinct shapes remembered (an MMSC has one or a few: per status code, per version).
DEFAULT_ENTRIES: Final = 32
#: Larger bodies are not the common success answer (and scanning them would cost).
MAX_BODY_BYTES: Final = 4096

# A value the decoder reads verbatim: no '<', '&', quotes or whitespace. The element may
# carry a prefix and attributes; the end tag must follow the value directly.
_VALUE: Final = rb"([A-Za-z0-9._:@/+=-]{1,100})"
_TRANSACTION_ID: Final = re.compile(
    rb"<(?:[A-Za-z_][\w.-]*:)?TransactionID(?:\s[^<>]*)?>" + _VALUE + rb"</"
)
_MESSAGE_ID: Final = re.compile(
    rb"<(?:[A-Za-z_][\w.-]*:)?MessageID(?:\s[^<>]*)?>" + _VALUE + rb"</"
)


class ResponseShapes:
    """Decode MMSC answers, reusing the decoded message of an already seen shape.

    Thread-safe (the memo is guarded by a lock); bounded (least recently used shapes go).
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS, max_entries: int = DEFAULT_ENTRIES) -> None:
        #: The decoder's limits, fixed per instance: a memo vouches for them only.
        self.limits = limits
        self.max_entries = max_entries
        self._max_body = min(MAX_BODY_BYTES, limits.max_body_bytes)
        #: Shape -> the decoded message's constructor arguments.
        self._shapes: OrderedDict[tuple[str | None, bytes], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        #: Answers taken from a memo, and answers decoded in full (for tests and benches).
        self.hits = 0
        self.misses = 0

    def decode(self, body: bytes, content_type: str | None = None) -> Message:
        """As :func:`protocol.codec.decode` with this instance's limits: the same result
        and the same errors."""
        cut = _cut(body) if len(body) <= self._max_body else None
        if cut is None:
            return decode_message(body, content_type, limits=self.limits)
        shape, transaction_id, message_id = cut
        key = (content_type, shape)
        with self._lock:
            known = self._shapes.get(key)
            if known is not None:
                self._shapes.move_to_end(key)
                self.hits += 1
        if known is not None:
            # What dataclasses.replace does, without looking up the fields every time.
            return SubmitRsp(**known, transaction_id=transaction_id, message_id=message_id)
        message = decode_message(body, content_type, limits=self.limits)
        self.misses += 1
        if (
            type(message) is SubmitRsp
            and not message.attachments
            and message.transaction_id == transaction_id
            and message.message_id == message_id
        ):
            fields = {
                f.name: getattr(message, f.name)
                for f in dataclasses.fields(message)
                if f.init and f.name not in ("transaction_id", "message_id")
            }
            with self._lock:
                self._shapes[key] = fields
                while len(self._shapes) > self.max_entries:
                    self._shapes.popitem(last=False)
        return message


def _cut(body: bytes) -> tuple[bytes, str, str | None] | None:
    """The body with its TransactionID and MessageID values taken out, and the values.

    None when a look-alike could hide from the decoder (a comment, CDATA section or
    processing instruction past the XML declaration), or the names occur other than as
    one element's start and end tags (twice: the TransactionID always, MessageID if at
    all), or the TransactionID's value is not a plain one.
    """
    if (
        b"<!" in body
        or body.find(b"<?", 1) >= 0
        or body.count(b"TransactionID") != 2  # a start and an end tag
        or body.count(b"MessageID") not in (0, 2)
    ):
        return None
    transaction = _TRANSACTION_ID.search(body)
    if transaction is None:
        return None
    message = _MESSAGE_ID.search(body)
    spans = sorted(m.span(1) for m in (transaction, message) if m is not None)
    pieces: list[bytes] = []
    start = 0
    for begin, end in spans:
        pieces.append(body[start:begin])
        start = end
    pieces.append(body[start:])
    # A NUL cannot occur in XML, so no real body is the shape of another.
    return (
        b"\0".join(pieces),
        transaction.group(1).decode("ascii"),
        None if message is None else message.group(1).decode("ascii"),
    )
