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

Whatever the memo cannot vouch for (no TransactionID, either value found twice or with
other characters, a body over :data:`MAX_BODY_BYTES`, another message type, values the
decoder changed) takes the ordinary path, every time.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Final

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

    def __init__(self, max_entries: int = DEFAULT_ENTRIES) -> None:
        self.max_entries = max_entries
        self._shapes: OrderedDict[tuple[str | None, Limits, bytes], SubmitRsp] = OrderedDict()
        self._lock = threading.Lock()
        #: Answers taken from a memo, and answers decoded in full (for tests and benches).
        self.hits = 0
        self.misses = 0

    def decode(
        self, body: bytes, content_type: str | None = None, *, limits: Limits = DEFAULT_LIMITS
    ) -> Message:
        """As :func:`protocol.codec.decode`, with the same result and the same errors."""
        cut = _cut(body) if _plain(body, limits) else None
        if cut is None:
            return decode_message(body, content_type, limits=limits)
        shape, transaction_id, message_id = cut
        key = (content_type, limits, shape)
        with self._lock:
            known = self._shapes.get(key)
            if known is not None:
                self._shapes.move_to_end(key)
                self.hits += 1
        if known is not None:
            return dataclasses.replace(known, transaction_id=transaction_id, message_id=message_id)
        message = decode_message(body, content_type, limits=limits)
        self.misses += 1
        if (
            type(message) is SubmitRsp
            and not message.attachments
            and message.transaction_id == transaction_id
            and message.message_id == message_id
        ):
            with self._lock:
                self._shapes[key] = message
                while len(self._shapes) > self.max_entries:
                    self._shapes.popitem(last=False)
        return message


def _plain(body: bytes, limits: Limits) -> bool:
    """Small, and no comment, CDATA section or processing instruction (past the XML
    declaration) that could hide a look-alike of a value from the decoder."""
    return (
        len(body) <= min(MAX_BODY_BYTES, limits.max_body_bytes)
        and b"<!" not in body
        and body.find(b"<?", 1) < 0
    )


def _cut(body: bytes) -> tuple[bytes, str, str | None] | None:
    """The body with its TransactionID and MessageID values taken out, and the values;
    None unless the TransactionID is found exactly once and the MessageID at most once."""
    transaction = _TRANSACTION_ID.search(body)
    if transaction is None or _TRANSACTION_ID.search(body, transaction.end()) is not None:
        return None
    message = _MESSAGE_ID.search(body)
    if message is not None and _MESSAGE_ID.search(body, message.end()) is not None:
        return None
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
