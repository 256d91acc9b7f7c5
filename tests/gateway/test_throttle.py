from gateway.outbound.throttle import TokenBucket


def simulate(bucket: TokenBucket, requests: int) -> list[float]:
    """Send times when every request waits as the bucket says (a virtual clock)."""
    now = 0.0
    times = []
    for _ in range(requests):
        delay = bucket.reserve(now)
        times.append(now + delay)
    return times


def test_burst_then_steady_rate():
    bucket = TokenBucket(rate=10.0, burst=5.0)
    times = simulate(bucket, 25)
    assert times[:5] == [0.0] * 5
    # After the burst, one token every 0.1 s.
    gaps = [b - a for a, b in zip(times[5:], times[6:], strict=False)]
    assert all(abs(g - 0.1) < 1e-9 for g in gaps)
    assert abs(times[-1] - 2.0) < 1e-9


def test_never_more_than_rate_plus_burst_in_any_second():
    bucket = TokenBucket(rate=20.0, burst=20.0)
    times = simulate(bucket, 400)
    for start in [t for t in times]:
        in_window = sum(1 for t in times if start <= t < start + 1.0)
        assert in_window <= 20 + 20


def test_unlimited_never_waits():
    bucket = TokenBucket(rate=0, burst=1)
    assert all(bucket.reserve(0.0) == 0.0 for _ in range(1000))


def test_refill_is_capped_at_burst():
    bucket = TokenBucket(rate=1.0, burst=3.0)
    for _ in range(3):
        assert bucket.reserve(0.0) == 0.0
    # A long pause refills only up to the burst.
    assert [bucket.reserve(100.0) for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]


def test_slow_down_and_recover():
    bucket = TokenBucket(rate=10.0, burst=1.0)
    bucket.reserve(0.0)
    bucket.slow_down(0.5)
    assert bucket.effective_rate == 5.0
    assert abs(bucket.reserve(0.0) - 0.2) < 1e-9
    bucket.recover(1.0)
    assert bucket.factor == 1.0


def test_slow_down_limits_an_unlimited_bucket_to_its_observed_rate():
    bucket = TokenBucket(rate=0, burst=1)
    # 50 a second for two seconds, unthrottled.
    for i in range(100):
        assert bucket.reserve(i / 50) == 0.0
    bucket.slow_down(0.5)
    assert not bucket.unlimited
    assert bucket.effective_rate == 25.0
    times = simulate_from(bucket, 2.0, 51)
    # The first token is free, then one every 1/25 s.
    assert abs(times[-1] - (2.0 + 50 / 25)) < 1e-9
    bucket.recover(0.25)
    assert not bucket.unlimited
    bucket.recover(0.25)
    assert bucket.unlimited and bucket.reserve(10.0) == 0.0


def test_slow_down_of_an_idle_unlimited_bucket_is_at_least_one_a_second():
    bucket = TokenBucket(rate=0, burst=1)
    bucket.slow_down(0.5)
    assert bucket.effective_rate == 0.5


def test_peek_does_not_take_a_token():
    bucket = TokenBucket(rate=2.0, burst=1.0)
    assert bucket.peek(0.0) == 0.0
    assert bucket.peek(0.0) == 0.0
    assert bucket.reserve(0.0) == 0.0
    assert abs(bucket.peek(0.0) - 0.5) < 1e-9
    assert abs(bucket.peek(0.25) - 0.25) < 1e-9
    assert bucket.peek(0.5) == 0.0


def simulate_from(bucket: TokenBucket, start: float, requests: int) -> list[float]:
    return [start + bucket.reserve(start) for _ in range(requests)]
