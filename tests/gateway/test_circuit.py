"""An open circuit paces its probes: one at a time, each after a pause that doubles.

A real gateway sends to a real loopback MMSC that fails every SubmitReq with HTTP 503.
The MMSC notes, for each request, the route's failure count on arrival and when the
previous answer went out, so each probe's pause can be checked against the policy
(``initial_backoff x multiplier^n``). Only lower bounds are asserted: a sleep may run late
on a busy machine, never early.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from gateway.app import Gateway
from gateway.outbound.dispatcher import CIRCUIT_OPEN_AFTER
from tests.gateway.callback_helpers import build_config, eventually, running, send_message

INITIAL = 0.01
PROBES = 3
MAX_IN_FLIGHT = 4
#: Attempts claimed before the circuit opened may still go out after it (the worker lets
#: them finish); each adds one failure. From this count on, every request is a probe.
PROBING_FROM = CIRCUIT_OPEN_AFTER + MAX_IN_FLIGHT
#: Clock granularity between the loop's timer and time.monotonic().
SLACK = 0.005


@dataclass
class FailingMmsc:
    gateway: Gateway | None = None
    #: (arrival time, route failures on arrival, requests in flight here on arrival)
    arrivals: list[tuple[float, int, int]] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)
    in_flight: int = 0
    runner: web.AppRunner | None = None
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        assert self.gateway is not None
        failures = self.gateway.workers["mock"].consecutive_failures
        self.in_flight += 1
        self.arrivals.append((time.monotonic(), failures, self.in_flight))
        await asyncio.sleep(0.01)  # long enough for a second request to overlap
        self.in_flight -= 1
        self.answered.append(time.monotonic())
        return web.Response(status=503, text="down")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/mm7", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/mm7"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def test_open_circuit_sends_single_probes_with_doubling_pauses(tmp_path):
    mmsc = FailingMmsc()
    await mmsc.start()
    retry = {
        "initial_backoff_seconds": INITIAL,
        "multiplier": 2.0,
        "jitter": 0.0,
        "max_attempts": 50,
    }
    config = build_config(tmp_path, mmsc.url, mmsc={"max_in_flight": MAX_IN_FLIGHT, "retry": retry})
    try:
        async with running(config) as gw, aiohttp.ClientSession() as s:
            mmsc.gateway = gw
            for _ in range(8):
                status, body = await send_message(s, gw, "+821012345678")
                assert status == 202, body
            await eventually(
                lambda: sum(f >= PROBING_FROM for _, f, _ in mmsc.arrivals) >= PROBES,
                timeout=15,
            )
            assert gw.workers["mock"].circuit == "open"
    finally:
        await mmsc.stop()
    probes = [
        (i, arrived, failures, concurrent)
        for i, (arrived, failures, concurrent) in enumerate(mmsc.arrivals)
        if failures >= PROBING_FROM
    ][:PROBES]
    for i, arrived, failures, concurrent in probes:
        # One at a time, and only after the previous answer plus the pause for this many
        # failures: initial x 2^(failures beyond the threshold).
        assert concurrent == 1
        pause = INITIAL * 2 ** (failures - CIRCUIT_OPEN_AFTER)
        assert arrived - mmsc.answered[i - 1] >= pause - SLACK, (failures, pause)
    # Each probe failed, so the pauses grew: the failure counts are consecutive.
    counts = [failures for _, _, failures, _ in probes]
    assert counts == list(range(PROBING_FROM, PROBING_FROM + PROBES))
