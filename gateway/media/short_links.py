"""Short links to a message's media for SMS: ``{public_url}/m/{code}``.

A code is 10 random characters of a 57-letter alphabet without look-alikes (about 58
bits from ``secrets``): with the miss limit below, guessing one is hopeless. One code per
message, kept in the store with the expiry of a signed media URL made at the same time.
``MissLimiter`` counts lookups of unknown codes per client address and refuses a client
that keeps missing, so the code space cannot be walked.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

ALPHABET: Final = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
CODE_LENGTH: Final = 10


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def valid_code(code: str) -> bool:
    return len(code) == CODE_LENGTH and all(c in ALPHABET for c in code)


class ShortLinks:
    """Hands out the short link of a message (``save`` is the store's insert-or-get)."""

    def __init__(
        self,
        *,
        save: Callable[[str, str, float, float], Awaitable[str]],
        base_url: Callable[[], str],
        ttl_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.save = save
        self.base_url = base_url
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    async def url(self, message_id: str) -> str:
        now = self.clock()
        code = await self.save(message_id, new_code(), now + self.ttl_seconds, now)
        return f"{self.base_url().rstrip('/')}/m/{code}"


class MissLimiter:
    """At most ``misses`` unknown codes per client per ``window`` seconds (fixed window)."""

    def __init__(self, misses: int, window: float, clock: Callable[[], float]) -> None:
        self.misses = misses
        self.window = window
        self.clock = clock
        self._counts: dict[str, tuple[float, int]] = {}

    def blocked(self, client: str) -> bool:
        start, count = self._counts.get(client, (0.0, 0))
        return count >= self.misses and self.clock() - start < self.window

    def miss(self, client: str) -> None:
        now = self.clock()
        start, count = self._counts.get(client, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        self._counts[client] = (start, count + 1)
        if len(self._counts) > 10_000:  # bound memory: forget windows that are over
            self._counts = {k: v for k, v in self._counts.items() if now - v[0] < self.window}
