"""Three ``serve`` processes on one PostgreSQL database behave as one gateway.

The schema is applied first with ``mm7-gateway migrate``. Messages are posted to every
instance; one instance is SIGKILLed while the stream runs and restarted. Judged by the mock MMSC's own record: nothing accepted is lost; a
TransactionID reaches the mock twice only when the killed instance had sent it before it
died (its lease ran out and a peer, or itself restarted, sent it again); the route's
``tps`` and ``burst`` hold for the whole cluster (every window of arrivals fits one token
bucket), and so does ``max_in_flight`` (the mock never holds more SubmitReqs at once).
``mm7gw_cluster_instances`` follows the fleet and every instance's queue gauge drains. An
inbound MMS received by one instance is listed by another and its signed media URL is
served by a third (one signing key, media in the shared store). Every delivery report goes
to one instance and completes messages whichever instance sent them. Console sessions
are per instance (a load balancer needs sticky sessions for ``/console/``). Rates are checked loosely here (a loaded
two-core box); ``bench/cluster_rate.py`` measures them against the ±5 % target.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.gateway import pg_support
from tests.gateway.console_support import log_in, operator
from tests.gateway.support import b64, jpeg_bytes
from tests.reliability.cluster_support import (
    Cluster,
    bucket_excess,
    peak_concurrency,
    rate_between,
    steady_rate,
)
from tests.reliability.helpers import API_KEY, AUTH, eventually

pytestmark = pytest.mark.slow

TPS = 20.0
BURST = 4
MAX_IN_FLIGHT = 8
SLOW_IN_FLIGHT = 2
NAMES = ["gw-a", "gw-b", "gw-c"]
#: A SubmitReq sent just before the kill may be recorded by the mock just after it.
IN_TRANSIT = 0.5
#: Sends a window of arrivals may exceed the bucket by: 0.2 s of jitter at TPS.
BUCKET_SLACK = 4.0


@pytest.fixture
def store_url() -> Iterator[str]:
    # A fresh database, dropped after; skipped without PostgreSQL, failed under CI=1.
    yield from pg_support.session_database()


def fleet(root: Path, store_url: str) -> Cluster:
    exchange = {"timeout_seconds": 2.0, "connect_timeout_seconds": 1.0, "idle_probe_seconds": 0}
    return Cluster(
        root=root,
        store_url=store_url,
        routes=[
            {
                "name": "mock",
                "tps": TPS,
                "burst": BURST,
                "max_in_flight": MAX_IN_FLIGHT,
                **exchange,
            },
            # For max_in_flight: unlimited rate, so only the window limits concurrency.
            {
                "name": "slow",
                "sender": "12345",
                "tps": 0.0,
                "max_in_flight": SLOW_IN_FLIGHT,
                **exchange,
            },
        ],
        # Short leases and heartbeats: a dead instance's work and membership age out fast.
        cluster={"lease_seconds": 3.0, "heartbeat_seconds": 0.5},
        tables={"webhooks": {"timeout_seconds": 2.0}},
        # Answers take 0.2 s, so SubmitReqs are still at the mock when an instance dies.
        mock_args=["--dr-delay", "0.5", "--latency", "200"],
    )


async def post_wave(
    cluster: Cluster, names: list[str], first: int, count: int, route: str = "mock"
) -> list[str]:
    """``count`` messages round-robin over ``names``, six requests at a time."""
    ids: list[str] = []
    sem = asyncio.Semaphore(6)
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> None:
            payload = {"to": f"+1202555{i:04d}", "text": f"c{i}", "route": route}
            async with sem:
                ids.append(await cluster.submit(session, names[i % len(names)], payload))

        await asyncio.gather(*(one(i) for i in range(first, first + count)))
    return ids


async def instances_seen(cluster: Cluster, name: str, expected: int) -> None:
    async def check() -> bool:
        return await cluster.metric(name, "mm7gw_cluster_instances") == expected

    await eventually(check, 10.0, f"{name} sees {expected} instances")


async def all_final(cluster: Cluster, ids: list[str], wanted: set[str], timeout: float) -> None:
    async with aiohttp.ClientSession() as session:
        pending = list(ids)

        async def check() -> bool:
            nonlocal pending
            states = await asyncio.gather(*(cluster.status(session, "gw-b", m) for m in pending))
            pending = [m for m, s in zip(pending, states, strict=True) if s not in wanted]
            return not pending

        await eventually(check, timeout, f"every message {' or '.join(wanted)}", interval=0.3)


async def test_three_instances_one_killed_nothing_lost_limits_held(tmp_path, store_url):
    cluster = fleet(tmp_path, store_url)
    try:
        await cluster.start_mock()
        migrated = cluster.migrate("gw-a")  # before any instance, as the README says
        assert migrated.returncode == 0, migrated.stderr
        assert re.fullmatch(r"ok: schema version \d+ \(postgresql\)\n", migrated.stdout)
        await cluster.start_all(NAMES)
        for name in NAMES:
            await instances_seen(cluster, name, 3)

        # -- the stream, one instance killed in the middle of it ------------------------------
        ids = await post_wave(cluster, NAMES, 0, 150)
        await eventually(lambda: asyncio.sleep(0, cluster.sent() >= 50), 30.0, "50 sent", 0.05)
        # Kill while the mock holds one of gw-c's SubmitReqs (its answer is delayed): that
        # one reached the MMSC, but its outcome is never recorded, so it will be sent again.
        await eventually(
            # Written in the last 0.1 s: its answer is still 0.1 s or more away.
            lambda: asyncio.sleep(0, bool(cluster.unanswered_from("gw-c", within=0.1))),
            10.0,
            "a SubmitReq of gw-c at the mock",
            0.01,
        )
        cluster.kill("gw-c")
        killed_at = time.time()
        ids += await post_wave(cluster, ["gw-a", "gw-b"], 150, 60)  # intake goes on
        await instances_seen(cluster, "gw-a", 2)
        # Taken before the spawn: the new gw-c takes its own old claims back and may send
        # before start() has seen it ready.
        restarted_at = time.time()
        await cluster.start("gw-c")
        ids += await post_wave(cluster, NAMES, 210, 30)
        await instances_seen(cluster, "gw-a", 3)
        await instances_seen(cluster, "gw-c", 3)
        # Every delivery report came to gw-a, whichever instance had sent the message.
        await all_final(cluster, ids, {"delivered"}, timeout=60.0)

        arrivals = [a for a in cluster.arrivals() if a.route == "mock"]
        # Nothing lost: every accepted message reached the MMSC and was accepted there.
        accepted_at_mock = {a.message_id for a in arrivals if a.status_code == 1000}
        assert set(ids) <= accepted_at_mock, sorted(set(ids) - accepted_at_mock)[:5]
        # Duplicates only from the killed instance's leases, re-sent with the same id.
        by_transaction: dict[str, list] = defaultdict(list)
        for arrival in arrivals:
            by_transaction[arrival.transaction_id].append(arrival)
        resent = {t: sends for t, sends in by_transaction.items() if len(sends) > 1}
        for transaction_id, sends in resent.items():
            first, *again = sends
            assert first.instance == "gw-c" and first.at <= killed_at + IN_TRANSIT, sends
            assert all(a.at > killed_at for a in again), (transaction_id, sends)
        assert 1 <= len(resent) <= MAX_IN_FLIGHT, resent
        dead = (killed_at + IN_TRANSIT, restarted_at)
        assert not [a for a in arrivals if a.instance == "gw-c" and dead[0] < a.at < dead[1]]
        assert {a.instance for a in arrivals} == set(NAMES)  # every instance did its share

        # The route's tps and burst held for the cluster: every window of arrivals fits one
        # bucket, give or take BUCKET_SLACK sends (the time between a token and the mock's
        # file time, and the mock's own stalls on a loaded box, bunch arrivals up). One
        # bucket per instance would overshoot by 2 x BURST at once, and by far more later.
        times = sorted(a.at for a in arrivals)
        excess = bucket_excess(times, TPS, BURST)
        overall = steady_rate(times, BURST)
        outage = rate_between(times, killed_at, restarted_at)
        print(
            f"cluster of 3 at tps {TPS}: {len(arrivals)} SubmitReqs, steady {overall:.2f}/s, "
            f"while one was dead {outage:.2f}/s over {restarted_at - killed_at:.1f} s, "
            f"bucket excess {excess:.2f}, resent {len(resent)}"
        )
        assert excess <= BUCKET_SLACK, excess
        # Liveness only (the live instances kept sending, and did not stall for a lease):
        # the ±5 % figure is bench/cluster_rate.py's; here the suite shares two cores with
        # everything else, and a CPU-starved run measured 10.6/s during the outage.
        assert overall >= 0.5 * TPS, overall
        assert outage >= 0.3 * TPS, outage

        # Each instance's queue gauge comes back to zero, whoever accepted what.
        for name in NAMES:

            async def drained(name: str = name) -> bool:
                return await cluster.metric(name, 'mm7gw_queue_depth{mmsc="mock"}') == 0

            await eventually(drained, 10.0, f"{name}'s queue gauge back to 0")

        # -- inbound media: received by one instance, listed by another, served by a third --
        image = jpeg_bytes()
        async with aiohttp.ClientSession() as session:
            inbound = {
                "from": "+12025550199",
                "to": "12345",
                "text": "picture",
                "media": [{"content_type": "image/jpeg", "data": b64(image)}],
            }
            async with session.post(cluster.mock_base + "/admin/deliver", json=inbound) as r:
                assert (await r.json())["delivered"] is True  # to gw-a's MM7 listener
            async with session.get(
                cluster.instances["gw-b"].api + "/v1/inbound", headers=AUTH
            ) as r:
                (received,) = (await r.json())["data"]
            (part,) = [m for m in received["media"] if m["content_type"] == "image/jpeg"]
            link = urlsplit(part["url"])
            async with session.get(f"{cluster.instances['gw-c'].api}{link.path}?{link.query}") as r:
                assert r.status == 200
                assert await r.read() == image

        # -- the console's sessions live in one instance's memory --------------------------
        async with operator() as browser:
            login = await log_in(browser, cluster.instances["gw-a"].api, API_KEY)
            assert login.status == 303, login.status
            for name, expected in (("gw-a", 200), ("gw-b", 303)):
                url = cluster.instances[name].api + "/console/"
                async with browser.get(url, allow_redirects=False) as page:
                    assert page.status == expected, (name, page.status)

        # -- max_in_flight holds for the cluster ---------------------------------------------
        await cluster.mock_config(latency=300)  # several would be at the mock at once
        slow_ids = await post_wave(cluster, NAMES, 300, 24, route="slow")
        await all_final(cluster, slow_ids, {"submitted", "delivered"}, timeout=30.0)
        slow = [a for a in cluster.arrivals() if a.route == "slow"]
        assert {a.message_id for a in slow if a.status_code == 1000} >= set(slow_ids)
        peak = peak_concurrency(slow)
        print(f"max_in_flight {SLOW_IN_FLIGHT} per cluster: the mock held at most {peak} at once")
        assert peak == SLOW_IN_FLIGHT
    finally:
        cluster.stop()
