# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Opt-out: STOP/START keywords in inbound text and the (number, short code) suppression list.

An inbound MMS whose whole text is a STOP-family keyword (case, surrounding blanks and
inner spaces ignored, so ``" stop all "`` is ``STOPALL``) suppresses further messages
from that short code to that number; a START-family keyword lifts it. The suppression
row is written in the same transaction as the inbound message. Submissions consult
``OptOut.suppressed`` and are refused with ``403 recipient_opted_out``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import structlog

from gateway.api.schemas import SubmitRequest, normalise_number
from gateway.callbacks import sql
from gateway.errors import ApiError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from gateway.callbacks.inbound import Received
    from gateway.store import Store
    from gateway.submission import SubmissionService

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


class OptOut:
    """Suppression-list queries for the submission path."""

    def __init__(self, store: Store, default_senders: dict[str, str | None]) -> None:
        self.store = store
        #: Route name -> the sender a message without ``from`` goes out with.
        self.default_senders = default_senders

    async def check(
        self, numbers: Iterable[str], routes: Iterable[str], sender: str | None
    ) -> list[str]:
        """The numbers (each sent on the parallel route) that opted out of this sender."""
        pairs = [
            (number, sender or self.default_senders.get(route) or "")
            for number, route in zip(numbers, routes, strict=True)
        ]
        pairs = [(number, source) for number, source in pairs if source]
        if not pairs:
            return []
        return await self.store.read(lambda conn: sql.suppressed_numbers(conn, pairs))

    async def suppressed(self, numbers: Iterable[str], sender: str | None) -> list[str]:
        """Which of ``numbers`` opted out of messages from ``sender`` (a short code).

        A message without a sender (the route's default is used) is checked by the
        caller with that default; ``None`` matches nothing.
        """
        if not sender:
            return []
        pairs = [(number, sender) for number in numbers]
        return await self.store.read(lambda conn: sql.suppressed_numbers(conn, pairs))

    async def is_suppressed(self, number: str, sender: str | None) -> bool:
        return bool(await self.suppressed([number], sender))


class OptOutConfirmations:
    """The optional reply to a STOP/START: an ordinary outbound message, queued like any other.

    It goes back over the MMSC the keyword came from, from the short code it was sent to,
    and skips the suppression check (the number has just opted out, and a STOP
    confirmation is the one message carriers expect it to get). It is queued after the
    inbound message has been committed: a crash between the two loses the confirmation,
    never the opt-out itself.
    """

    def __init__(
        self,
        submissions: SubmissionService,
        *,
        owner: str,
        texts: Mapping[str, str | None],
    ) -> None:
        self.submissions = submissions
        self.owner = owner
        self.texts = dict(texts)

    async def confirm(self, mmsc: str, received: Received) -> str | None:
        """Queue the reply to ``received``; returns the new message id, or None if none is due."""
        text = self.texts.get(received.optout or "")
        if not text or not received.sender or not received.recipient:
            return None
        raw = received.sender.strip()
        try:
            number = normalise_number(raw if raw.startswith("+") else "+" + raw)
            request = SubmitRequest(
                to=(number,),
                sender=received.recipient,
                text=text,
                route=mmsc,
                delivery_report=False,
            )
            record, _ = await self.submissions.submit(
                self.owner, request, idempotency_key=None, request_hash=None, check_optout=False
            )
        except ApiError as exc:
            log.warning(
                "opt-out confirmation not sent",
                inbound_id=received.id,
                mmsc=mmsc,
                code=exc.code,
                reason=str(exc),
            )
            return None
        log.info(
            "opt-out confirmation queued",
            inbound_id=received.id,
            mmsc=mmsc,
            message_id=record.id,
            keyword=received.optout,
        )
        return record.id
