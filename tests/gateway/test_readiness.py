"""Readiness means "can accept and store work": one route of several with a dead MMSC does
not make the gateway unready. The idle probe finds that MMSC dead before any traffic
(the mock MMSC's admin API makes it fail, then heal), and route health shows in
``/readyz``'s body, ``/healthz/routes`` and ``mm7gw_route_circuit_state``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.config.model import GatewayConfig
from gateway.config.values import ENVIRON_CONTEXT_KEY
from tests.gateway.support import API_KEY, free_port

pytestmark = pytest.mark.asyncio

PROBE_EVERY = 0.05


def two_routes(data_dir: Path, good_url: str, bad_url: str, **bad: Any) -> GatewayConfig:
    def route(name: str, url: str, prefix: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "url": url,
            "sender": "12345",
            "tps": 0.0,
            "prefixes": [prefix],
            "idle_probe_seconds": PROBE_EVERY,
            # An open circuit paces its probes by the retry back-off: keep the test short.
            "retry": {"initial_backoff_seconds": 0.05, "max_backoff_seconds": 0.5},
            **extra,
        }

    return GatewayConfig.model_validate(
        {
            "gateway": {"data_dir": str(data_dir)},
            "listen": {"api": "127.0.0.1:0", "mm7": "127.0.0.1:0", "ops": "127.0.0.1:0"},
            "api_keys": [{"name": "test", "key": API_KEY}],
            "mmsc": [route("good", good_url, "+1"), route("bad", bad_url, "+44", **bad)],
        },
        context={ENVIRON_CONTEXT_KEY: {}},
    )


async def get_json(gw: Any, path: str) -> tuple[int, Any]:
    async with gw.session.get(gw.ops + path) as response:
        return response.status, await response.json()


async def wait_circuit(gw: Any, route: str, state: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, body = await get_json(gw, "/healthz/routes")
        assert status == 200
        if body["routes"][route]["circuit"] == state:
            return dict(body["routes"])
        assert time.monotonic() < deadline, f"{route} never {state}: {body}"
        await asyncio.sleep(0.02)


def sample(gw: Any, name: str, **labels: str) -> float:
    value = gw.gateway.registry.get_sample_value(name, labels)
    return float(value or 0.0)


async def test_idle_probe_opens_the_circuit_of_a_failing_mmsc_without_traffic(
    tmp_path: Path, mock_mmsc: Any, run_gateway: Any
) -> None:
    good, bad = await mock_mmsc(), await mock_mmsc()
    await bad.configure(http_error_rate=1.0)  # every request: bare HTTP 500
    gw = await run_gateway(two_routes(tmp_path, good.url, bad.url))
    routes = await wait_circuit(gw, "bad", "open")
    assert routes["good"] == {"circuit": "closed", "queue": 0}
    assert sample(gw, "mm7gw_route_circuit_state", mmsc="bad", state="open") == 1.0
    assert sample(gw, "mm7gw_route_circuit_state", mmsc="bad", state="closed") == 0.0
    assert sample(gw, "mm7gw_route_circuit_state", mmsc="good", state="closed") == 1.0
    assert sample(gw, "mm7gw_route_probes_total", mmsc="bad", outcome="failed") >= 5
    assert sample(gw, "mm7gw_route_probes_total", mmsc="good", outcome="ok") >= 1
    # No message was ever sent: the probes were the only requests either MMSC saw.
    stats = await bad.stats()
    assert sample(gw, "mm7gw_submit_requests_total", mmsc="bad", status_class="http_error") == 0
    assert stats["requests"], stats
    # One route down: the gateway still accepts and stores work, for every route.
    status, ready = await get_json(gw, "/readyz")
    assert status == 200, ready
    assert ready["routes"] == {"good": "closed", "bad": "open"}
    assert ready["reasons"] == []
    status, body = await gw.submit({"to": "+12025550101", "text": "via the good route"})
    assert status == 202
    await gw.wait_status(body["id"], {"submitted", "delivered"})
    # The MMSC heals: a probe answered (405 to a HEAD is an answer) closes the circuit.
    await bad.configure(http_error_rate=0.0)
    await wait_circuit(gw, "bad", "closed")
    assert sample(gw, "mm7gw_route_probes_total", mmsc="bad", outcome="ok") >= 1


async def test_idle_probe_counts_a_refused_connection_and_can_be_switched_off(
    tmp_path: Path, mock_mmsc: Any, run_gateway: Any
) -> None:
    good = await mock_mmsc()
    closed_port = free_port()  # nothing listens there
    gw = await run_gateway(
        two_routes(tmp_path, good.url, f"http://127.0.0.1:{closed_port}/mm7"),
    )
    await wait_circuit(gw, "bad", "open")
    other = await run_gateway(
        two_routes(
            tmp_path / "off", good.url, f"http://127.0.0.1:{closed_port}/mm7", idle_probe_seconds=0
        )
    )
    await asyncio.sleep(PROBE_EVERY * 10)
    _, body = await get_json(other, "/healthz/routes")
    assert body["routes"]["bad"]["circuit"] == "closed"
    assert sample(other, "mm7gw_route_probes_total", mmsc="bad", outcome="failed") == 0
