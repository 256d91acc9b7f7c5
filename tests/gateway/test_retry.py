import random

import pytest

from gateway.outbound.retry import GiveUp, Retry, RetryPolicy, backoff, classify_status, decide


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (1000, "ok"),
        (1100, "ok"),
        (2002, "fail"),
        (3000, "retry"),
        (4006, "retry_slow_down"),
        (4004, "fail"),
        (2150, "fail"),
        (3999, "retry"),
        (4999, "retry"),
    ],
)
def test_default_classes(code, expected):
    assert classify_status(code) == expected


def test_per_mmsc_overrides():
    overrides = {4005: "retry_slow_down", 3001: "fail", 3510: "retry_slow_down"}
    assert classify_status(4005, overrides) == "retry_slow_down"
    assert classify_status(3001, overrides) == "fail"
    assert classify_status(3510, overrides) == "retry_slow_down"
    assert classify_status(3000, overrides) == "retry"


def test_backoff_grows_and_is_capped():
    policy = RetryPolicy(initial_backoff=1, multiplier=2, max_backoff=10, jitter=0)
    rng = random.Random(1)
    assert [backoff(policy, n, rng) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_jitter_stays_within_bounds():
    policy = RetryPolicy(initial_backoff=10, jitter=0.2)
    rng = random.Random(7)
    values = [backoff(policy, 1, rng) for _ in range(200)]
    assert min(values) >= 8 and max(values) <= 12
    assert len(set(values)) > 100


def test_decide():
    policy = RetryPolicy(max_attempts=3, initial_backoff=1, jitter=0)
    rng = random.Random(0)
    assert decide(policy, "retry", 1, 100.0, 1000.0, rng, "x") == Retry(101.0, "x")
    assert isinstance(decide(policy, "retry", 3, 100.0, 1000.0, rng, "x"), GiveUp)
    assert decide(policy, "fail", 1, 100.0, 1000.0, rng, "status 2002 x").state == "rejected"
    assert decide(policy, "retry", 1, 100.0, 100.5, rng, "x").state == "expired"
    # Slow-down answers never use up the attempt budget.
    assert isinstance(decide(policy, "retry_slow_down", 50, 100.0, 1000.0, rng, "x"), Retry)
