"""Throttling measured at the mock MMSC: ``tps`` within ±5 % over 10 s, bursts bounded."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest

from tests.gateway.support import make_config

TPS = 20.0


async def _measure(directory, mock_mmsc, run_gateway) -> tuple[int, list[float]]:
    """Send 260 messages at TPS; (SubmitReqs in the first 10 s at the mock, send times)."""
    directory.mkdir()
    mock = await mock_mmsc(stats_last=1000, dr_delay=3600)
    gw = await run_gateway(
        make_config(directory, mock.url, mmsc_tps=TPS, mmsc_burst=1.0, mmsc_max_in_flight=8)
    )
    client = gw.gateway.clients["mock"]
    sent: list[float] = []
    original = client.post

    async def recording_post(content_type, body):
        sent.append(time.monotonic())
        return await original(content_type, body)

    client.post = recording_post  # type: ignore[method-assign]
    results = await asyncio.gather(
        *(
            gw.submit({"to": "+12025550101", "text": f"t{i}", "delivery_report": False})
            for i in range(260)
        )
    )
    assert all(status == 202 for status, _ in results)
    await asyncio.sleep(11.5)
    stats = await mock.stats()
    times = sorted(
        datetime.fromisoformat(m["at"]).timestamp()
        for m in stats["last_messages"]
        if m["type"] == "SubmitReq" and m["direction"] == "in"
    )
    start = times[0]
    return sum(1 for t in times if start <= t < start + 10.0), sent


@pytest.mark.slow
async def test_tps_is_honoured_over_ten_seconds(tmp_path, mock_mmsc, run_gateway):
    # Over the limit fails at once. Under it may be CPU starvation rather than the
    # throttle (burst 1: every late wake-up of the sender is throughput lost, and the
    # suite shares two cores), so a low first run is measured once more before failing.
    counts = []
    for attempt in range(2):
        in_window, sent = await _measure(tmp_path / f"run{attempt}", mock_mmsc, run_gateway)
        counts.append(in_window)
        assert in_window <= TPS * 10 * 1.05, in_window
        # Measured where the gateway issues each request (arrival times add network jitter).
        burst = 1
        for t in sent:
            assert sum(1 for u in sent if t <= u < t + 1.0) <= TPS + burst
        if in_window >= TPS * 10 * 0.95:
            break
    assert counts[-1] >= TPS * 10 * 0.95, counts
