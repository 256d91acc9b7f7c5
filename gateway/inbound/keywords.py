# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Opt-out: STOP/START keywords in inbound text and the (number, short code) suppression list.

An inbound MMS whose whole text is a STOP-family keyword (case, surrounding blanks and
inner spaces ignored, so ``" stop all "`` is ``STOPALL``) suppresses further messages
from that short code to that number; a START-family keyword lifts it. The suppression
row (and the optional confirmation reply) is written in the same transaction as the
inbound message; the outbound side checks the list at submission
(``gateway.outbound.suppression``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import structlog

from gateway.errors import ApiError
from gateway.numbers import normalise_number
from gateway.store.records import NewMessage

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

log = structlog.get_logger("gateway.optout")

DEFAULT_STOP_KEYWORDS: Final = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
DEFAULT_START_KEYWORDS: Final = ("START", "UNSTOP")


def normalise_keyword(text: str) -> str:
    """Upper case, no whitespace, no trailing ``.``/``!``: what a keyword compares as."""
    return "".join(text.split()).upper().rstrip(".!")


@dataclass(frozen=True, slots=True)
class OptOutPolicy:
    enabled: bool = True
    stop: frozenset[str] = field(default_factory=lambda: frozenset(DEFAULT_STOP_KEYWORDS))
    start: frozenset[str] = field(default_factory=lambda: frozenset(DEFAULT_START_KEYWORDS))

    @classmethod
    def build(
        cls, enabled: bool, stop: Iterable[str] | None, start: Iterable[str] | None
    ) -> OptOutPolicy:
        return cls(
            enabled=enabled,
            stop=frozenset(normalise_keyword(k) for k in (stop or DEFAULT_STOP_KEYWORDS)),
            start=frozenset(normalise_keyword(k) for k in (start or DEFAULT_START_KEYWORDS)),
        )

    def classify(self, text: str | None) -> str | None:
        """``stop``, ``start`` or ``None`` for an inbound message's text."""
        if not self.enabled or not text:
            return None
        word = normalise_keyword(text)
        if word in self.stop:
            return "stop"
        if word in self.start:
            return "start"
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """A text message back to a number that sent us a keyword."""

    route: str
    to: str
    sender: str
    text: str


#: Builds a reply as an outbound message record, not yet stored (handed in by the app: the
#: inbound side does not import the outbound one); raises ApiError when it cannot be sent.
BuildReply = Callable[[Reply], NewMessage]


class OptOutConfirmations:
    """The optional reply to a STOP/START: an ordinary outbound message.

    It goes back over the MMSC the keyword came from, from the short code it was sent to,
    and skips the suppression check (the number has just opted out, and a STOP
    confirmation is the one message carriers expect it to get). Its record is committed
    in the same transaction as the inbound message and the suppression change: a crash
    after the DeliverRsp cannot lose it, and a resent DeliverReq (stored once) does not
    make a second one.
    """

    def __init__(self, build: BuildReply, *, texts: Mapping[str, str | None]) -> None:
        self.build = build
        self.texts = dict(texts)

    def reply_for(
        self, mmsc: str, keyword: str | None, sender: str | None, recipient: str | None
    ) -> NewMessage | None:
        """The reply to a ``stop``/``start`` keyword from ``sender`` to our ``recipient``
        short code, or None when none is configured or it cannot be sent."""
        return self.reply_with(mmsc, self.texts.get(keyword or ""), sender, recipient)

    def reply_with(
        self, mmsc: str, text: str | None, sender: str | None, recipient: str | None
    ) -> NewMessage | None:
        """``text`` back to ``sender`` from our ``recipient`` address (None: no reply)."""
        number = inbound_number(sender)
        if not text or number is None or not recipient:
            return None
        try:
            return self.build(Reply(route=mmsc, to=number, sender=recipient, text=text))
        except ApiError as exc:
            log.warning("opt-out confirmation not sent", mmsc=mmsc, code=exc.code, reason=str(exc))
            return None


def inbound_number(sender: str | None) -> str | None:
    """The E.164 form of a number an MMSC gave us (some drop the ``+``), or None."""
    if not sender or not sender.strip():
        return None
    raw = sender.strip()
    try:
        return normalise_number(raw if raw.startswith("+") else "+" + raw)
    except ApiError:
        return None


def address_key(address: str) -> str:
    """How our own addresses compare: no ``+``, no blanks, upper case."""
    return "".join(address.split()).lstrip("+").upper()


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolKeywordPolicy:
    """The keywords of one ``[[pool]]`` and the texts that answer them."""

    pool: str
    stop: frozenset[str]
    start: frozenset[str]
    help: frozenset[str]
    #: ``stop``/``start``/``help`` -> reply text (None: no reply).
    texts: Mapping[str, str | None]

    def classify(self, text: str | None) -> str | None:
        if not text:
            return None
        word = normalise_keyword(text)
        for keyword, words in (("stop", self.stop), ("start", self.start), ("help", self.help)):
            if word in words:
                return keyword
        return None


class PoolKeywords:
    """Pool keyword policies by sender address (an address belongs to one pool)."""

    def __init__(self, policies: Iterable[tuple[Iterable[str], PoolKeywordPolicy]]) -> None:
        self._by_address = {
            address_key(address): policy for addresses, policy in policies for address in addresses
        }

    def policy_for(self, recipient: str | None) -> PoolKeywordPolicy | None:
        return self._by_address.get(address_key(recipient)) if recipient else None
