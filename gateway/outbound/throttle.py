"""Token buckets for per-MMSC and per-sender submission rates.

The bucket is a pure object (``reserve(now)`` returns how long to wait); the dispatcher
is the only one that sleeps. Reserving ahead of time (a negative balance) keeps waiters
in FIFO order without a lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

#: Keyed buckets are swept for full ones when their count passes this (then twice the
#: count left), so sweeping costs O(1) per lookup on average.
SWEEP_AT: Final = 1024


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; ``rate <= 0`` is unlimited."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)
    #: Multiplier applied by slow-down signals (4006-style), restored gradually.
    factor: float = field(default=1.0, init=False)
    #: An unlimited bucket has no rate to slow down from: it counts the tokens it hands
    #: out per second, and a slow-down limits it to ``factor`` x that observed rate until
    #: it has fully recovered.
    observed: float = field(default=0.0, init=False)
    _second: int = field(default=0, init=False)
    _granted: int = field(default=0, init=False)
    _ceiling: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.burst = max(1.0, self.burst)
        self.tokens = self.burst

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0 and self._ceiling <= 0

    @property
    def effective_rate(self) -> float:
        return (self.rate if self.rate > 0 else self._ceiling) * self.factor

    def _observe(self, now: float) -> None:
        second = int(now)
        if second != self._second:
            # The last whole second's count; after an idle gap, the rate before it.
            if second == self._second + 1:
                self.observed = float(self._granted)
            self._second, self._granted = second, 0
        self._granted += 1

    def _refill(self, now: float) -> None:
        if self.updated is None:
            self.updated = now
            return
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.effective_rate)
        self.updated = now

    def reserve(self, now: float) -> float:
        """Take one token; return the seconds to wait before using it (0 = go now)."""
        if self.unlimited:
            self._observe(now)
            return 0.0
        self._refill(now)
        self.tokens -= 1.0
        if self.tokens >= 0:
            return 0.0
        return -self.tokens / self.effective_rate

    def peek(self, now: float) -> float:
        """Seconds until a token is free, without taking one (0 = one is free now)."""
        if self.unlimited:
            return 0.0
        self._refill(now)
        if self.tokens >= 1.0:
            return 0.0
        return (1.0 - self.tokens) / self.effective_rate

    def full(self, now: float) -> bool:
        """Saved up to ``burst`` again: indistinguishable from a new bucket."""
        if self.unlimited or self.updated is None:
            return True
        return self.tokens + max(0.0, now - self.updated) * self.effective_rate >= self.burst

    def slow_down(self, factor: float, floor: float = 0.05) -> None:
        if self.rate <= 0 and self._ceiling <= 0:
            # From unlimited to what we were sending at (at least one a second).
            self._ceiling = max(1.0, self.observed, float(self._granted))
            self.tokens = 1.0
            self.updated = None
        self.factor = max(floor, self.factor * factor)

    def recover(self, step: float) -> None:
        self.factor = min(1.0, self.factor + step)
        if self.factor >= 1.0 and self.rate <= 0:
            self._ceiling = 0.0  # fully recovered: unlimited again


class KeyedBuckets:
    """One bucket per key (a sender address, which clients choose freely).

    Only buckets still refilling are worth keeping: a full one behaves exactly like a new
    one, so it is dropped. Memory is bounded by the keys used in the last ``burst / rate``
    seconds, not by every sender ever seen.
    """

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.rate = rate
        self.burst = burst
        self.buckets: dict[str, TokenBucket] = {}
        self._sweep_at = SWEEP_AT

    def __len__(self) -> int:
        return len(self.buckets)

    def get(self, key: str, now: float, rate: float | None = None) -> TokenBucket:
        """The key's bucket; a new one refills at ``rate`` (default: the common rate)."""
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= self._sweep_at:
                self.sweep(now)
            bucket = self.buckets[key] = TokenBucket(
                self.rate if rate is None else rate, self.burst
            )
        return bucket

    def sweep(self, now: float) -> None:
        """Drop every bucket that is full at ``now``."""
        self.buckets = {k: b for k, b in self.buckets.items() if not b.full(now)}
        self._sweep_at = max(SWEEP_AT, 2 * len(self.buckets))
