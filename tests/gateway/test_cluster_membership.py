"""Membership and the shared rate hook, on the embedded store (a cluster of one)."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from gateway.ops.cluster import Membership
from gateway.ops.metrics import Metrics
from gateway.outbound.throttle import TokenBucket
from gateway.store import SqliteStore


async def test_sqlite_is_a_cluster_of_one(tmp_path):
    store = SqliteStore(tmp_path / "db.sqlite3")
    await store.open()
    try:
        registry = CollectorRegistry()
        membership = Membership(
            store, instance_id="gw-a", heartbeat_seconds=5.0,
            metrics=Metrics(registry, ["r1"]), clock=lambda: 1000.0,
        )  # fmt: skip
        assert not store.shared
        assert await membership.beat() == 1
        assert registry.get_sample_value("mm7gw_cluster_instances") == 1
        assert await store.take_send_token("r1", 10.0, 1.0) == 0.0
    finally:
        await store.close()


async def test_a_shared_bucket_makes_the_worker_wait(tmp_path, monkeypatch):
    """The worker asks the shared bucket after its own and waits as long as it says."""
    from gateway.outbound import dispatcher

    calls: list[tuple[str, float, float]] = []
    answers = [0.05, 0.0]

    async def shared(route: str, rate: float, burst: float) -> float:
        calls.append((route, rate, burst))
        return answers.pop(0)

    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)
        await real_sleep(0)

    worker = object.__new__(dispatcher.RouteWorker)
    worker.route = type("R", (), {"name": "r1", "burst": 2.0, "slow_down_recovery_seconds": 0})()
    worker.bucket = TokenBucket(5.0, 2.0)
    worker.shared_rate = shared
    worker._shared_turn = asyncio.Lock()
    worker._throttle_wait = type("H", (), {"observe": lambda self, v: None})()
    monkeypatch.setattr(dispatcher.asyncio, "sleep", fake_sleep)
    await worker._throttle()
    assert calls == [("r1", 5.0, 2.0), ("r1", 5.0, 2.0)]
    assert slept == [0.05]


async def test_a_workers_waiting_sends_ask_the_shared_bucket_one_at_a_time():
    """Each ask is a database transaction: the sends of one window take turns, so a
    refill costs one ask per instance, not one per waiting send."""
    from gateway.outbound import dispatcher

    asking = most = asks = granted = 0

    async def shared(route: str, rate: float, burst: float) -> float:
        nonlocal asking, most, asks, granted
        asking += 1
        asks += 1
        most = max(most, asking)
        await asyncio.sleep(0.002)  # the round trip to the database
        asking -= 1
        if asks % 2:  # every other ask finds the bucket empty (a peer took the token)
            return 0.001
        granted += 1
        return 0.0

    worker = object.__new__(dispatcher.RouteWorker)
    worker.route = type("R", (), {"name": "r1", "burst": 8.0, "slow_down_recovery_seconds": 0})()
    worker.bucket = TokenBucket(1000.0, 8.0)  # the local bucket never makes them wait
    worker.shared_rate = shared
    worker._shared_turn = asyncio.Lock()
    worker._throttle_wait = type("H", (), {"observe": lambda self, v: None})()
    async with asyncio.timeout(10):
        await asyncio.gather(*(worker._throttle() for _ in range(6)))
    assert granted == 6
    assert most == 1


async def test_a_stopping_instance_leaves_at_once(open_store):
    """Peers count a stopped instance out at its next beat, not after missed heartbeats."""
    a, b = await open_store("gw-a"), await open_store("gw-b")
    clock = [1000.0]
    registry = CollectorRegistry()
    metrics = Metrics(registry, ["r1"])
    first = Membership(a, instance_id="gw-a", heartbeat_seconds=5.0, metrics=metrics,
                       clock=lambda: clock[0])  # fmt: skip
    second = Membership(b, instance_id="gw-b", heartbeat_seconds=5.0, metrics=metrics,
                        clock=lambda: clock[0])  # fmt: skip
    await second.start()
    expected = 2 if a.shared else 1  # the embedded store is a cluster of one
    assert await first.beat() == expected
    await second.stop()
    clock[0] += 1.0  # well within MISSED_HEARTBEATS: only leaving explains the drop
    assert await first.beat() == 1
