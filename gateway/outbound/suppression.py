"""The opt-out check at submission: recipients who sent STOP to the sender in use.

The list itself is written by the inbound side (a STOP/START keyword, in the transaction
of the message that carried it); here it is only read. A refused recipient answers
``rejected`` with ``recipient_opted_out`` (all of them: ``403``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from gateway.store import Store


class OptOut:
    """Suppression-list queries for the submission path."""

    def __init__(self, store: Store, default_senders: dict[str, str | None]) -> None:
        self.store = store
        #: Route name -> the sender a message without ``from`` goes out with.
        self.default_senders = default_senders

    def senders(self, routes: Iterable[str], sender: str | None) -> tuple[str, ...]:
        """The sender each recipient (on the parallel route) goes out with, whose opt-out
        list it is checked against (``""``: none, nothing to check)."""
        return tuple(sender or self.default_senders.get(route) or "" for route in routes)

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
        return await self.store.suppressed_numbers(pairs)

    async def refusals(
        self, numbers: tuple[str, ...], routes: Iterable[str], sender: str | None
    ) -> tuple[tuple[int, str, str], ...]:
        """``(index, code, message)`` of each recipient refused for the route-level list."""
        blocked = set(await self.check(numbers, routes, sender))
        return tuple(
            (i, "recipient_opted_out", "the recipient opted out of messages from this sender")
            for i, number in enumerate(numbers)
            if number in blocked
        )

    async def suppressed(self, numbers: Iterable[str], sender: str | None) -> list[str]:
        """Which of ``numbers`` opted out of messages from ``sender`` (a short code).

        A message without a sender (the route's default is used) is checked by the
        caller with that default; ``None`` matches nothing.
        """
        if not sender:
            return []
        pairs = [(number, sender) for number in numbers]
        return await self.store.suppressed_numbers(pairs)

    async def is_suppressed(self, number: str, sender: str | None) -> bool:
        return bool(await self.suppressed([number], sender))
