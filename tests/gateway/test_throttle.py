from gateway.outbound.throttle import SWEEP_AT, KeyedBuckets, TokenBucket


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


def test_keyed_buckets_forget_senders_whose_bucket_is_full_again():
    # Sender addresses come from clients: one bucket each must not pile up forever.
    buckets = KeyedBuckets(rate=1.0)
    now = 0.0
    for i in range(50 * SWEEP_AT):
        now = i * 0.001  # 1000 new senders a second, each sending once
        assert buckets.get(f"sender-{i}", now).reserve(now) == 0.0
        # Only buckets from the last second (refilling) plus one sweep's growth remain.
        assert len(buckets) <= 2 * SWEEP_AT + 1000
    assert len(buckets) < 3 * SWEEP_AT


def test_keyed_buckets_keep_a_refilling_sender_limited():
    buckets = KeyedBuckets(rate=0.5)
    assert buckets.get("long-code", 0.0).reserve(0.0) == 0.0
    # Many other senders force sweeps; the long code's bucket (2 s to refill) survives.
    for i in range(3 * SWEEP_AT):
        buckets.get(f"other-{i}", 1.0).reserve(1.0)
    assert buckets.get("long-code", 1.0).peek(1.0) == 1.0
    # Once full it may be dropped, and a new bucket allows the same as the old one.
    assert buckets.get("long-code", 1.0).full(2.0)
    buckets.sweep(3.5)
    assert len(buckets) == 0
    assert buckets.get("long-code", 3.5).reserve(3.5) == 0.0
