"""MMSC outage: refused connections, then timeouts, then HTTP 500s, then 4006 answers.

The gateway runs as a subprocess (its RSS is read from ``/proc``); the mock MMSC runs in
this process on a fixed port, so it can be stopped (connection refused) and started
again where the gateway expects it, and a middleware counts every ``POST /mm7`` it sees.
Each phase queues more messages. Proven:

* the gateway backs off: per-message attempts follow the exponential schedule (never
  more than the schedule allows for the time a message waited), the route never exceeds
  its token bucket even when every attempt fails, and 4006 slows the whole route down;
* ``/readyz`` shows the route's circuit ``open`` during the outage but stays 200 (the
  gateway still accepts and stores work), and ``closed`` after;
* the queue grows while RSS does not grow with it (queued messages live in SQLite);
* after recovery everything drains, within its validity.
"""

from __future__ import annotations

import asyncio
import json
import re
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

TPS = 100.0
PHASE_SECONDS = 5.0
PER_PHASE = 300
TEXT_BYTES = 4_900  # the API caps text at 5000 characters
TIMEOUT = 0.5
RETRY = {
    "initial_backoff_seconds": 0.5,
    "max_backoff_seconds": 4.0,
    "multiplier": 2.0,
    "jitter": 0.2,
    "max_attempts": 1000,
    "default_validity_seconds": 120.0,
    "slow_down_recovery_seconds": 1.0,
}


def max_attempts_within(seconds: float) -> int:
    """Most attempts the back-off schedule allows in ``seconds`` (shortest jittered delays,
    plus the attempt in flight at the end)."""
    low = 1 - RETRY["jitter"]
    elapsed, attempts = 0.0, 1
    while True:
        delay = low * min(
            RETRY["max_backoff_seconds"],
            RETRY["initial_backoff_seconds"] * RETRY["multiplier"] ** (attempts - 1),
        )
        if elapsed + delay > seconds:
            return attempts + 1
        elapsed += delay + 0.0
        attempts += 1


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            total += float(match.group(2))
    return total


class Client:
    def __init__(self, session: aiohttp.ClientSession, api: str, ops: str) -> None:
        self.session = session
        self.api = api
        self.ops = ops
        self.ids: list[str] = []
        self.queued_at: dict[str, float] = {}

    async def queue(self, count: int, tag: str) -> None:
        sem = asyncio.Semaphore(16)
        filler = "x" * TEXT_BYTES

        async def one(i: int) -> None:
            async with (
                sem,
                self.session.post(
                    self.api + "/v1/messages",
                    json={"to": "+12025550101", "text": f"{tag}-{i} {filler}"},
                    headers=AUTH,
                ) as r,
            ):
                assert r.status == 202, await r.text()
                message_id = (await r.json())["id"]
                self.ids.append(message_id)
                self.queued_at[message_id] = time.monotonic()

        await asyncio.gather(*(one(i) for i in range(count)))

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        async with self.session.get(self.ops + "/readyz") as r:
            return r.status, await r.json()

    async def metrics(self) -> str:
        async with self.session.get(self.ops + "/metrics") as r:
            return await r.text()

    async def resources(self) -> list[dict[str, Any]]:
        out = []
        for message_id in self.ids:
            async with self.session.get(f"{self.api}/v1/messages/{message_id}", headers=AUTH) as r:
                out.append(await r.json())
        return out


@pytest.mark.slow
async def test_outage_backs_off_and_drains_after_recovery(tmp_path: Path) -> None:
    mock_port = free_port()
    ports = {name: free_port() for name in ("api", "mm7", "ops")}
    config = tmp_path / "gateway.toml"
    config.write_text(
        gateway_toml(
            tmp_path / "data",
            f"http://127.0.0.1:{mock_port}/mm7",
            ports,
            mmsc={
                "tps": TPS,
                "burst": TPS,
                "max_in_flight": 4,
                "timeout_seconds": TIMEOUT,
                "connect_timeout_seconds": TIMEOUT,
            },
            retry=RETRY,
        )
    )
    gateway = Daemon(["serve", "--config", str(config)], tmp_path / "gateway.log")
    mock = await start_mock(port=mock_port)
    gateway.start()
    phases: dict[str, dict[str, Any]] = {}
    try:
        await wait_http(f"http://127.0.0.1:{ports['ops']}/healthz")
        async with aiohttp.ClientSession() as session:
            client = Client(
                session, f"http://127.0.0.1:{ports['api']}", f"http://127.0.0.1:{ports['ops']}"
            )
            # Warm up: a healthy route, ready, and the RSS baseline once everything is loaded.
            await client.queue(50, "warm")
            await eventually(lambda: _all_submitted(client), 20, "warm-up messages submitted", 0.2)
            assert (await client.readyz())[0] == 200
            rss_baseline = gateway.rss_kib()
            outage_started = time.monotonic()

            async def phase(name: str) -> None:
                started = time.monotonic()
                before = await client.metrics()
                await client.queue(PER_PHASE, name)
                await asyncio.sleep(max(0.0, PHASE_SECONDS - (time.monotonic() - started)))
                ended = time.monotonic()
                after = await client.metrics()
                status, ready = await client.readyz()
                attempts = sum(
                    metric(after, "mm7gw_submit_requests_total", mmsc="mock", status_class=c)
                    - metric(before, "mm7gw_submit_requests_total", mmsc="mock", status_class=c)
                    for c in ("success", "client_error", "server_error", "service_error",
                              "timeout", "network_error", "http_error")
                )  # fmt: skip
                phases[name] = {
                    "seconds": round(ended - started, 2),
                    "gateway_attempts": int(attempts),
                    "mock_saw": mock.posts_between(started, ended),
                    "queued_total": sum(ready["queue"].values()),
                    "readyz": status,
                    "circuit": ready["routes"]["mock"],
                    "rss_kib": gateway.rss_kib(),
                    "attempts_per_minute": round(attempts * 60 / (ended - started), 1),
                }

            await mock.stop()  # 1: connection refused
            await phase("refused")
            await mock.start()  # 2: answers later than the gateway waits
            mock.reconfigure(latency=int(TIMEOUT * 3000))
            await phase("timeout")
            mock.reconfigure(latency=0, http_error_rate=1)  # 3: bare HTTP 500
            await phase("http_500")
            mock.reconfigure(http_error_rate=0, fail_rate="4006=1")  # 4: service unavailable
            await phase("status_4006")
            outage_seconds = time.monotonic() - outage_started
            resources = await client.resources()
            mock.reconfigure(fail_rate="")  # recovery
            recovered = time.monotonic()
            drain = await eventually(
                lambda: _all_submitted(client), 60, "queue drained after recovery", 0.3
            )
            ready_after = await client.readyz()
            final = await client.resources()
            rss_end = gateway.rss_kib()
    finally:
        gateway.stop()
        await mock.stop()

    outage = [p for p in phases.values()]
    # Payload queued between the first and the last RSS reading of the outage.
    queued_payload_kib = 3 * PER_PHASE * TEXT_BYTES // 1024
    attempts_by_age = [(r["attempts"], recovered - client.queued_at[r["id"]]) for r in resources]
    worst = max(a - max_attempts_within(age) for a, age in attempts_by_age)
    summary = {
        "suite": "outage",
        "phases": phases,
        "outage_seconds": round(outage_seconds, 1),
        "messages": len(client.ids),
        "queued_at_peak": phases["status_4006"]["queued_total"],
        "retries_per_minute_during_outage": round(
            sum(p["gateway_attempts"] for p in outage) * 60 / outage_seconds, 1
        ),
        "max_attempts_per_message": max(a for a, _ in attempts_by_age),
        "schedule_excess_worst": worst,
        "rss_kib": {
            "baseline": rss_baseline,
            "peak_queue": phases["status_4006"]["rss_kib"],
            "end": rss_end,
        },
        "queued_payload_kib": queued_payload_kib,
        "drain_seconds": round(drain, 2),
    }
    print(json.dumps(summary))

    for name, p in phases.items():
        assert p["readyz"] == 200 and p["circuit"] == "open", (name, p)
        # The token bucket holds even when every attempt fails (+ burst, + in-flight window).
        assert p["gateway_attempts"] <= TPS * p["seconds"] + TPS + 4, (name, p)
    # What the MMSC saw is what the gateway says it sent (nothing reached a stopped MMSC).
    assert phases["refused"]["mock_saw"] == 0
    for name in ("timeout", "http_500", "status_4006"):
        # (attempts straddling a phase boundary: at most two in-flight windows)
        assert abs(phases[name]["mock_saw"] - phases[name]["gateway_attempts"]) <= 8, phases[name]
    # Back-off: no message was tried more often than the schedule allows for its wait.
    assert worst <= 0, attempts_by_age
    # 4006 slows the whole route: far below the configured rate.
    assert phases["status_4006"]["gateway_attempts"] <= 0.5 * TPS * PHASE_SECONDS
    # The queue grew; memory did not grow with it.
    depths = [p["queued_total"] for p in outage]
    assert depths == sorted(depths) and depths[-1] >= 3 * PER_PHASE
    growth = phases["status_4006"]["rss_kib"] - phases["refused"]["rss_kib"]
    assert growth < queued_payload_kib // 2, summary
    # Everything drained after recovery, within validity, and the route is ready again.
    assert ready_after[0] == 200
    assert all(r["status"] == "submitted" for r in final)
    assert drain < RETRY["default_validity_seconds"]


async def _all_submitted(client: Client) -> bool:
    return all(r["status"] == "submitted" for r in await client.resources())
