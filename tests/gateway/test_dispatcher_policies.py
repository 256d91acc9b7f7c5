"""Dispatcher policies seen from the mock MMSC: slow-down, cancel in flight, per-sender rate."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.gateway.support import API_KEY, make_config

pytestmark = pytest.mark.asyncio

TO = "+12025550101"


def _submits(stats: dict, outcome: str | None = None) -> int:
    counts = stats["requests"].get("SubmitReq", {})
    return sum(counts.values()) if outcome is None else int(counts.get(outcome, 0))


async def test_slow_down_throttles_an_unlimited_route(tmp_path, mock_mmsc, run_gateway):
    """tps = 0 has no rate to halve: 4006 limits the route to what it was sending, slowed."""
    mock = await mock_mmsc(fail_rate=((4006, 1.0),))
    gw = await run_gateway(
        make_config(
            tmp_path,
            mock.url,
            mmsc_tps=0.0,
            mmsc_retry={
                "initial_backoff_seconds": 0.02,
                "jitter": 0.0,
                # Gentle, so the test does not wait out a deep slow-down.
                "slow_down_factor": 0.8,
                "slow_down_recovery_seconds": 0.2,
            },
        )
    )
    ids = []
    for i in range(5):
        _, body = await gw.submit({"to": TO, "text": f"x{i}", "delivery_report": False})
        ids.append(body["id"])
    await asyncio.sleep(1.5)
    storm = _submits(await mock.stats())
    # Unthrottled, 5 messages retried every 20 ms would be ~375 requests in 1.5 s.
    assert 1 <= storm <= 20, storm
    assert not gw.gateway.workers["mock"].bucket.unlimited
    await mock.configure(fail_rate="")
    for message_id in ids:
        await gw.wait_status(message_id, {"submitted"}, timeout=20)
    # Recovered: unlimited again once the factor is back to 1.
    deadline = time.monotonic() + 5
    while not gw.gateway.workers["mock"].bucket.unlimited and time.monotonic() < deadline:
        await gw.submit({"to": TO, "text": "more", "delivery_report": False})
        await asyncio.sleep(0.25)
    assert gw.gateway.workers["mock"].bucket.unlimited


async def test_cancel_while_in_flight_cancels_at_the_mmsc(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc(latency_ms=400.0, dr_delay=30)
    gw = await run_gateway(make_config(tmp_path, mock.url))
    _, body = await gw.submit({"to": TO, "text": "x", "delivery_report": False})
    deadline = time.monotonic() + 5
    while not gw.gateway.workers["mock"].in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert gw.gateway.workers["mock"].in_flight, "the submission never went in flight"
    async with gw.session.delete(
        f"{gw.api}/v1/messages/{body['id']}", headers={"Authorization": f"Bearer {API_KEY}"}
    ) as r:
        assert r.status == 200, await r.text()
    done = await gw.wait_status(body["id"], {"canceled"}, timeout=10)
    assert done["recipients"][0]["status"] == "canceled"
    assert (await mock.stats())["requests"]["CancelReq"] == {"1000": 1}


async def test_cancel_refused_by_the_mmsc_is_409(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc(dr_delay=30)
    gw = await run_gateway(make_config(tmp_path, mock.url))
    _, body = await gw.submit({"to": TO, "text": "x", "delivery_report": False})
    await gw.wait_status(body["id"], {"submitted"})
    await mock.configure(fail_rate="2005=1.0")
    async with gw.session.delete(
        f"{gw.api}/v1/messages/{body['id']}", headers={"Authorization": f"Bearer {API_KEY}"}
    ) as r:
        assert r.status == 409
        error = (await r.json())["error"]
        assert error["code"] == "cancel_refused" and "2005" in error["message"]
    assert (await gw.get(body["id"]))["status"] == "submitted"


async def test_a_rate_limited_sender_does_not_hold_up_others(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc(dr_delay=30)
    gw = await run_gateway(
        make_config(tmp_path, mock.url, mmsc_per_sender_tps=1.0, mmsc_max_in_flight=2)
    )
    slow = []
    for i in range(4):
        _, body = await gw.submit({"to": TO, "from": "+12025550199", "text": f"s{i}"})
        slow.append(body["id"])
    started = time.monotonic()
    _, other = await gw.submit({"to": TO, "from": "12345", "text": "other"})
    await gw.wait_status(other["id"], {"submitted"}, timeout=5)
    assert time.monotonic() - started < 0.8, "another sender waited behind the long code"
    for message_id in slow:
        await gw.wait_status(message_id, {"submitted"}, timeout=10)
    # The long code itself went out at 1 a second.
    assert time.monotonic() - started >= 2.5
