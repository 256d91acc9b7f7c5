"""Overload: applications offer messages faster than the route drains them.

The route drains ``TPS`` messages per second and the gateway holds at most
``MAX_QUEUE`` submissions. Clients offer ``OFFERED`` messages as fast as they can; at the
bound they get ``503`` + ``Retry-After`` (code ``queue_full``) and try again later.
Proven: back-pressure engages at the configured bound (within the requests already past
the check), every accepted message is submitted exactly once (none dropped), and the
gateway's RSS stays flat. The gateway runs as a subprocess so its RSS can be read.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.reliability.helpers import (
    AUTH,
    Daemon,
    eventually,
    free_port,
    gateway_toml,
    start_mock,
    wait_http,
)

TPS = 25.0
MAX_QUEUE = 40
OFFERED = 200
CLIENTS = 16


@pytest.mark.slow
async def test_backpressure_at_the_bound_and_nothing_accepted_is_dropped(tmp_path: Path) -> None:
    mock = await start_mock()
    ports = {name: free_port() for name in ("api", "mm7", "ops")}
    config = tmp_path / "gateway.toml"
    config.write_text(
        gateway_toml(
            tmp_path / "data",
            mock.url,
            ports,
            gateway={"max_queue_depth": MAX_QUEUE},
            mmsc={"tps": TPS, "burst": 1.0, "max_in_flight": 4},
        )
    )
    gateway = Daemon(["serve", "--config", str(config)], tmp_path / "gateway.log")
    gateway.start()
    api = f"http://127.0.0.1:{ports['api']}"
    ops = f"http://127.0.0.1:{ports['ops']}"
    accepted: dict[int, str] = {}
    refusals: list[tuple[int, str | None, str]] = []
    depths: list[int] = []
    rss: list[int] = []
    try:
        await wait_http(ops + "/healthz")
        rss_start = gateway.rss_kib()
        async with aiohttp.ClientSession() as session:
            offered = iter(range(OFFERED))
            done = asyncio.Event()

            async def client() -> None:
                for i in offered:
                    while True:
                        async with session.post(
                            api + "/v1/messages",
                            json={"to": "+12025550101", "text": f"o{i}"},
                            headers={**AUTH, "Idempotency-Key": f"o{i}"},
                        ) as r:
                            body = await r.json()
                            if r.status == 202:
                                accepted[i] = body["id"]
                                break
                            refusals.append(
                                (r.status, r.headers.get("Retry-After"), body["error"]["code"])
                            )
                        # Retry-After says 5 s; a test client may retry sooner (it is a hint).
                        await asyncio.sleep(0.2)

            async def sample() -> None:
                while not done.is_set():
                    async with session.get(ops + "/readyz") as r:
                        depths.append(sum((await r.json())["queue"].values()))
                    rss.append(gateway.rss_kib())
                    await asyncio.sleep(0.05)

            sampler = asyncio.create_task(sample())
            started = time.monotonic()
            await asyncio.gather(*(client() for _ in range(CLIENTS)))
            intake_seconds = time.monotonic() - started

            async def drained() -> bool:
                for message_id in accepted.values():
                    async with session.get(f"{api}/v1/messages/{message_id}", headers=AUTH) as r:
                        if (await r.json())["status"] != "submitted":
                            return False
                return True

            await eventually(drained, 30, "every accepted message submitted", 0.3)
            done.set()
            await sampler
    finally:
        gateway.stop()
        await mock.stop()

    submits = mock.state().stats.requests["SubmitReq", "1000"]
    summary = {
        "suite": "overload",
        "offered": OFFERED,
        "accepted": len(accepted),
        "refused_503": sum(1 for s, _, _ in refusals if s == 503),
        "retry_after": sorted({ra for _, ra, _ in refusals}, key=str),
        "max_queue_depth_seen": max(depths),
        "max_queue_depth_configured": MAX_QUEUE,
        "submitted": submits,
        "intake_seconds": round(intake_seconds, 2),
        "rss_kib": {"start": rss_start, "max": max(rss)},
    }
    print(json.dumps(summary))

    assert refusals, "the intake never hit the bound"
    assert {(s, code) for s, _, code in refusals} == {(503, "queue_full")}
    assert all(ra is not None and int(ra) > 0 for _, ra, _ in refusals)
    # The bound holds, give or take the requests already past the check (one per client).
    assert max(depths) <= MAX_QUEUE + CLIENTS, depths
    assert max(depths) >= MAX_QUEUE - CLIENTS
    assert len(accepted) == OFFERED and len(set(accepted.values())) == OFFERED
    assert submits == OFFERED, "an accepted message was dropped or sent twice"
    assert max(rss) - rss_start < 16 * 1024, summary


async def test_queue_bound_is_exact_under_a_concurrent_burst(
    tmp_path: Path, mocks: Any, run_gateway: Any
) -> None:
    from tests.gateway.support import make_config

    mock = await mocks()
    running = await run_gateway(
        make_config(
            tmp_path / "data",
            mock.url,
            gateway__max_queue_depth=MAX_QUEUE,
            mmsc_tps=0.01,  # nothing drains during the burst
            mmsc_burst=1.0,
        )
    )
    results = await asyncio.gather(
        *(running.submit({"to": "+12025550101", "text": f"b{i}"}) for i in range(2 * MAX_QUEUE))
    )
    accepted = sum(1 for status, _ in results if status == 202)
    assert accepted == MAX_QUEUE, f"{accepted} accepted for a bound of {MAX_QUEUE}"
    assert {status for status, _ in results} == {202, 503}
