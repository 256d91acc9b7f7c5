"""Retry decisions for submissions: pure functions of the outcome, attempt and clock.

The status table in ``protocol.status`` gives each MM7 status its default class; an
MMSC's ``status_overrides`` may reclassify codes (one peer's 4005 is another's 4006).
HTTP errors, timeouts and network errors are transient. Back-off is exponential with
jitter and never schedules past the message's expiry.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from protocol import RetryClass, retry_class

Outcome = Literal["ok", "fail", "retry", "retry_slow_down"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 10
    initial_backoff: float = 1.0
    max_backoff: float = 300.0
    multiplier: float = 2.0
    jitter: float = 0.2


@dataclass(frozen=True, slots=True)
class Retry:
    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class GiveUp:
    state: Literal["failed", "expired", "rejected"]
    reason: str


def classify_status(code: int, overrides: dict[int, str] | None = None) -> Outcome:
    """The retry class of an MM7 status code, after per-MMSC overrides."""
    if overrides and code in overrides:
        override = overrides[code]
        if override in ("fail", "retry", "retry_slow_down"):
            return override  # type: ignore[return-value]
    cls = retry_class(code)
    return {
        RetryClass.OK: "ok",
        RetryClass.FAIL: "fail",
        RetryClass.RETRY: "retry",
        RetryClass.RETRY_SLOW_DOWN: "retry_slow_down",
    }[cls]  # type: ignore[return-value]


def backoff(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    base = min(
        policy.max_backoff, policy.initial_backoff * policy.multiplier ** max(0, attempt - 1)
    )
    spread = base * policy.jitter
    return max(0.0, base + rng.uniform(-spread, spread))


def decide(
    policy: RetryPolicy,
    outcome: Outcome,
    attempt: int,
    now: float,
    expires_at: float,
    rng: random.Random,
    reason: str,
) -> Retry | GiveUp:
    """What to do after a failed attempt number ``attempt`` (1-based)."""
    if outcome == "fail":
        return GiveUp("rejected" if reason.startswith("status ") else "failed", reason)
    if now >= expires_at:
        return GiveUp("expired", reason)
    # Slow-down answers are the peer's flow control, not a failure of this message:
    # they do not use up attempts.
    if outcome != "retry_slow_down" and attempt >= policy.max_attempts:
        return GiveUp("failed", f"{reason} (gave up after {attempt} attempts)")
    at = now + backoff(policy, attempt if outcome != "retry_slow_down" else 1, rng)
    if at >= expires_at:
        return GiveUp("expired", reason)
    return Retry(at, reason)
