# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""SOAP envelopes of SubmitReq from per-shape templates: the same bytes, a fraction of the work.

Theory of operation: a gateway sends thousands of SubmitReqs that differ only in a few
values (TransactionID, recipient numbers, sender address, subject, expiry date); the
rest (version, VASP ids, options, content reference) is the same for every message of
a route. Building the XML tree for each one is most of the cost of ``encode``. So the
first SubmitReq of a *shape* (every field but those values, plus the kinds and
attributes of its addresses) is built once by the ordinary encoder with unique sentinel
values, the output is cut at the sentinels, and later messages of the shape are the
fixed chunks joined with their own values, escaped the way libxml2 writes text.

The output is byte for byte what :func:`protocol.encoder.encode_message` gives (a test
checks that on generated messages); whatever the template cannot vouch for (legacy
versions, which rewrite addresses; values with characters libxml2 would refuse or write
as character references; a sentinel not found exactly once) takes the ordinary path.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from protocol.addresses import Recipients
from protocol.encoder import envelope_xml
from protocol.errors import ProtocolError
from protocol.messages import SenderIdentification, SubmitReq
from protocol.values import write_date
from protocol.versions import LEGACY_VERSIONS

if TYPE_CHECKING:
    from protocol.addresses import Address

#: Distinct shapes remembered (a route has one or a few: with or without subject, ...).
DEFAULT_ENTRIES: Final = 64

#: Sentinel values: invisible separators around a counter, never in a real config value
#: (and checked: each must occur exactly once in the skeleton).
_MARK: Final = "\u2063"
_SENTINEL_DATE: Final = datetime(2999, 12, 31, 23, 59, 58, tzinfo=UTC)
#: Characters libxml2 refuses in text, or writes as a character reference (``\r``): such
#: values take the ordinary encoder, which raises or writes them itself.
_NOT_PLAIN: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\r\ud800-\udfff\ufffe\uffff]")
_SUBMIT_FIELDS: Final = tuple(
    f.name
    for f in dataclasses.fields(SubmitReq)
    if f.compare
    and f.name
    not in (
        "transaction_id",
        "sender_identification",
        "recipients",
        "expiry_date",
        "subject",
        "attachments",
    )
)


def _sentinel(index: int) -> str:
    return f"{_MARK}{index}{_MARK}"


def _escape(text: str) -> bytes | None:
    """``text`` as libxml2 writes a text node (UTF-8), or None for the ordinary path."""
    if _NOT_PLAIN.search(text):
        return None
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode()


def _address_shape(address: Address) -> tuple[object, ...]:
    """What of an address the template keeps: all but its value."""
    return (address.kind, address.display_only, address.address_coding, address.id)


class EnvelopeTemplates:
    """A bounded LRU of SubmitReq envelope templates, one per (version, shape)."""

    def __init__(self, max_entries: int = DEFAULT_ENTRIES) -> None:
        self.max_entries = max_entries
        #: shape -> (fixed chunks, or None when this shape cannot be templated)
        self._items: OrderedDict[tuple[object, ...], tuple[bytes, ...] | None] = OrderedDict()
        self._lock = threading.Lock()
        #: Envelopes served from a template (the rest took the ordinary encoder).
        self.hits = 0

    def envelope(self, msg: SubmitReq, version: str) -> bytes:
        """The SOAP envelope of ``msg`` (``msg.content`` already set by the caller)."""
        shape = self._shape(msg, version)
        if shape is None:
            return envelope_xml(msg, version)
        values = self._values(msg)
        if values is None:
            return envelope_xml(msg, version)
        try:
            chunks = self._items.get(shape, ())
        except TypeError:  # an unhashable field value (a list where a tuple belongs)
            return envelope_xml(msg, version)
        if chunks == ():
            try:
                chunks = self._build(msg, version)
            except ProtocolError:  # the message itself is at fault: the encoder says how
                return envelope_xml(msg, version)
            with self._lock:  # callers may encode big messages in worker threads
                self._items[shape] = chunks
                while len(self._items) > self.max_entries:
                    self._items.popitem(last=False)
        if chunks is None or len(chunks) != len(values) + 1:
            return envelope_xml(msg, version)
        self.hits += 1
        out = [chunks[0]]
        for value, chunk in zip(values, chunks[1:], strict=True):
            out.append(value)
            out.append(chunk)
        return b"".join(out)

    @staticmethod
    def _shape(msg: SubmitReq, version: str) -> tuple[object, ...] | None:
        if version in LEGACY_VERSIONS or not isinstance(msg, SubmitReq):
            return None
        recipients = msg.recipients
        if not len(recipients):
            return None  # the encoder's own error
        ident = msg.sender_identification
        sender = ident.sender_address
        return (
            version,
            ident.vasp_id,
            ident.vas_id,
            None if sender is None else _address_shape(sender),
            tuple(_address_shape(a) for a in recipients.to),
            tuple(_address_shape(a) for a in recipients.cc),
            tuple(_address_shape(a) for a in recipients.bcc),
            msg.expiry_date is None,
            msg.subject is None,
            *(getattr(msg, name) for name in _SUBMIT_FIELDS),
        )

    @staticmethod
    def _values(msg: SubmitReq) -> list[bytes] | None:
        """The variable values in document order, escaped; None: not templatable."""
        texts: list[str] = []
        if msg.transaction_id is None:
            return None  # the encoder's own error
        texts.append(msg.transaction_id)
        sender = msg.sender_identification.sender_address
        if sender is not None:
            texts.append(sender.value)
        texts.extend(a.value for a in msg.recipients.all())
        if msg.expiry_date is not None:
            if not isinstance(msg.expiry_date, datetime):
                return None  # a text date: the encoder validates it
            texts.append(write_date(msg.expiry_date))
        if msg.subject is not None:
            texts.append(msg.subject)
        out: list[bytes] = []
        for text in texts:
            escaped = _escape(text)
            if escaped is None:
                return None
            out.append(escaped)
        return out

    @staticmethod
    def _build(msg: SubmitReq, version: str) -> tuple[bytes, ...] | None:
        """Encode a skeleton of ``msg`` with sentinels (in document order: TransactionID,
        SenderAddress, recipients, ExpiryDate, Subject) and cut it at them."""
        counter = iter(range(1 << 16))
        marks: list[str] = []

        def mark() -> str:
            marks.append(_sentinel(next(counter)))
            return marks[-1]

        ident = msg.sender_identification
        sender = ident.sender_address
        transaction_id = mark()
        if sender is not None:
            ident = SenderIdentification(
                vasp_id=ident.vasp_id,
                vas_id=ident.vas_id,
                sender_address=dataclasses.replace(sender, value=mark()),
            )
        recipients = Recipients(
            to=tuple(dataclasses.replace(a, value=mark()) for a in msg.recipients.to),
            cc=tuple(dataclasses.replace(a, value=mark()) for a in msg.recipients.cc),
            bcc=tuple(dataclasses.replace(a, value=mark()) for a in msg.recipients.bcc),
        )
        if msg.expiry_date is not None:
            marks.append(write_date(_SENTINEL_DATE))
        skeleton = dataclasses.replace(
            msg,
            transaction_id=transaction_id,
            sender_identification=ident,
            recipients=recipients,
            expiry_date=None if msg.expiry_date is None else _SENTINEL_DATE,
            subject=None if msg.subject is None else mark(),
            attachments=(),
        )
        xml = envelope_xml(skeleton, version)
        chunks: list[bytes] = []
        rest = xml
        for text in marks:
            encoded = text.encode()
            if xml.count(encoded) != 1:
                return None
            head, found, rest = rest.partition(encoded)
            if not found:
                return None  # not in the expected order
            chunks.append(head)
        chunks.append(rest)
        return tuple(chunks)
