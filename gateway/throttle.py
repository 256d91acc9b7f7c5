"""Token buckets for per-MMSC and per-sender submission rates.

The bucket is a pure object (``reserve(now)`` returns how long to wait); the dispatcher
is the only one that sleeps. Reserving ahead of time (a negative balance) keeps waiters
in FIFO order without a lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; ``rate <= 0`` is unlimited."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)
    #: Multiplier applied by slow-down signals (4006-style), restored gradually.
    factor: float = field(default=1.0, init=False)

    def __post_init__(self) -> None:
        self.burst = max(1.0, self.burst)
        self.tokens = self.burst

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    @property
    def effective_rate(self) -> float:
        return self.rate * self.factor

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
            return 0.0
        self._refill(now)
        self.tokens -= 1.0
        if self.tokens >= 0:
            return 0.0
        return -self.tokens / self.effective_rate

    def slow_down(self, factor: float, floor: float = 0.05) -> None:
        self.factor = max(floor, self.factor * factor)

    def recover(self, step: float) -> None:
        self.factor = min(1.0, self.factor + step)
