"""Bulk send rate: one ~100 KB JPEG MMS to 20,000 recipients through POST /v1/batches.

``recipients_per_second``: recipients the mock MMSC accepted per second, from the POST
until the last SubmitReq was answered (one recipient per SubmitReq, the default route
setting). Baseline, measured in the same run: the mock's own rate for the same SubmitReq
(a body the gateway sent, captured by a recording mock) posted by a bare aiohttp client
with the same concurrency as the route's ``max_in_flight``. Also the gateway's peak RSS
while it accepts a 100,000-recipient batch (its MMSC unreachable, so all stay queued),
against its own peak before that POST. Writes bench/results/bulk.json (DESIGN.md §10).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from e2e import (
    CONCURRENCY,
    KEY,
    cpu_seconds,
    free_port,
    mmsc_section,
    rss_peak_kib,
    spawn,
    stop,
    wait_up,
)
from e2e import write_config as e2e_write_config
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bulk.json"
RECIPIENTS = int(os.environ.get("BENCH_BULK_RECIPIENTS", "20000"))
BIG_BATCH = int(os.environ.get("BENCH_BULK_BIG", "100000"))
HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


def image_100k() -> bytes:
    """A deterministic JPEG of about 100 KB (noise compresses badly)."""
    rng = random.Random(7)
    image = Image.new("RGB", (480, 320))
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256))
                   for _ in range(480 * 320)])  # fmt: skip
    for quality in range(95, 5, -5):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        if buffer.tell() <= 100_000:
            return buffer.getvalue()
    return buffer.getvalue()


def numbers(count: int) -> list[str]:
    """Distinct valid E.164 numbers (US 212/646/718/917 exchanges)."""
    out = []
    for area in ("212", "646", "718", "917", "347", "929", "332", "516", "631", "914"):
        for exchange in ("555", "556"):
            out += [f"+1{area}{exchange}{n:04d}" for n in range(10_000)]
    return out[:count]


def write_config(path: Path, data_dir: Path, routes: dict[str, str], ports: dict[str, int]) -> None:
    mmscs = "".join(
        mmsc_section(name, url, max_in_flight=CONCURRENCY, extra="max_message_bytes = 300000\n")
        for name, url in routes.items()
    )
    e2e_write_config(path, data_dir, "", ports, mmscs=mmscs)


async def mock_successes(session: aiohttp.ClientSession, base: str) -> int:
    async with session.get(base + "/admin/stats") as r:
        stats = await r.json()
    return int(stats["requests"].get("SubmitReq", {}).get("1000", 0))


async def post_batch(session: aiohttp.ClientSession, api: str, body: bytes) -> dict[str, object]:
    async with session.post(api + "/v1/batches", data=body, headers=HEADERS) as r:
        if r.status != 202:
            raise RuntimeError(f"gateway answered {r.status}: {await r.text()}")
        result: dict[str, object] = await r.json()
        if result["invalid_count"]:
            raise RuntimeError(f"invalid bench numbers: {result['invalid']}")
        return result


def batch_body(to: list[str], image: bytes, route: str | None = None) -> bytes:
    import base64

    payload: dict[str, object] = {
        "to": to,
        "text": "Our summer sale starts today",
        "delivery_report": False,
        "media": [{"content_type": "image/jpeg", "data": base64.b64encode(image).decode()}],
    }
    if route is not None:
        payload["route"] = route
    return json.dumps(payload).encode()


def captured_submit(record: Path) -> tuple[str, bytes]:
    """Content type and body of one SubmitReq the recording mock received."""
    raw = min(record.glob("*-in-request.http")).read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(": ")
        if name.lower() == "content-type":
            return value, body
    raise RuntimeError("the recorded SubmitReq has no Content-Type")


async def bare_rate(url: str, content_type: str, body: bytes, count: int) -> float:
    """SubmitReqs per second the mock answers to a bare client (no gateway)."""
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(range(count))

        async def worker() -> None:
            for _ in queue:
                async with session.post(
                    url, data=body, headers={"Content-Type": content_type}
                ) as r:
                    if b"1000" not in await r.read():
                        raise RuntimeError("the mock did not accept the captured SubmitReq")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return count / (time.perf_counter() - started)


async def gateway_rate(api: str, mock_base: str, body: bytes, count: int) -> tuple[float, float]:
    """Recipients per second the mock accepted for one batch, and the POST's own seconds."""
    async with aiohttp.ClientSession() as session:
        before = await mock_successes(session, mock_base)
        started = time.perf_counter()
        await post_batch(session, api, body)
        accepted = time.perf_counter() - started
        while await mock_successes(session, mock_base) - before < count:
            await asyncio.sleep(0.05)
        return count / (time.perf_counter() - started), accepted


async def rate_run(tmpdir: Path, image: bytes, log: Path) -> dict[str, float]:
    py = sys.executable
    mock_port, capture_port = free_port(), free_port()
    record = tmpdir / "record"
    mock = spawn([py, "-m", "gateway", "mock-mmsc", "--listen", f"127.0.0.1:{mock_port}"], log)
    capture = spawn(
        [py, "-m", "gateway", "mock-mmsc", "--listen", f"127.0.0.1:{capture_port}",
         "--record", str(record)],
        log,
    )  # fmt: skip
    ports = {name: free_port() for name in ("api", "mm7", "ops")}
    config = tmpdir / "gateway.toml"
    mock_base = f"http://127.0.0.1:{mock_port}"
    routes = {"mock": mock_base + "/mm7", "capture": f"http://127.0.0.1:{capture_port}/mm7"}
    write_config(config, tmpdir / "data", routes, ports)
    gateway = spawn([py, "-m", "gateway", "serve", "--config", str(config)], log)
    api = f"http://127.0.0.1:{ports['api']}"
    to = numbers(RECIPIENTS)
    try:
        await wait_up(mock_base + "/admin/stats")
        await wait_up(f"http://127.0.0.1:{capture_port}/admin/stats")
        await wait_up(f"http://127.0.0.1:{ports['ops']}/healthz")
        async with aiohttp.ClientSession() as session:
            await post_batch(session, api, batch_body(to[:20], image, "capture"))
        while not list(record.glob("*-in-request.http")):
            await asyncio.sleep(0.05)
        content_type, submit = captured_submit(record)
        await bare_rate(mock_base + "/mm7", content_type, submit, 300)  # warm-up
        await gateway_rate(api, mock_base, batch_body(to[:300], image, "mock"), 300)  # warm-up
        baseline = await bare_rate(mock_base + "/mm7", content_type, submit, RECIPIENTS)
        cpu = cpu_seconds(gateway.pid)
        ours, accept_seconds = await gateway_rate(
            api, mock_base, batch_body(to, image, "mock"), RECIPIENTS
        )
        cpu = (cpu_seconds(gateway.pid) - cpu) / RECIPIENTS
    finally:
        stop(gateway)
        stop(capture)
        stop(mock)
    print(
        f"bare client -> mock: {baseline:.0f} SubmitReq/s ({len(submit)} bytes each); "
        f"batch of {RECIPIENTS}: {ours:.0f} recipients/s, ratio {ours / baseline:.3f}; "
        f"POST answered after {accept_seconds:.2f} s; gateway CPU {cpu * 1e3:.3f} ms/recipient"
    )
    return {"baseline": baseline, "ours": ours, "accept": accept_seconds, "cpu": cpu}


async def memory_run(tmpdir: Path, image: bytes, log: Path) -> tuple[int, int, float]:
    """Peak RSS (KiB) before and after accepting a ``BIG_BATCH`` batch, and the POST time."""
    py = sys.executable
    ports = {name: free_port() for name in ("api", "mm7", "ops")}
    config = tmpdir / "gateway-big.toml"
    write_config(config, tmpdir / "data-big", {"mock": "http://127.0.0.1:9/mm7"}, ports)
    gateway = spawn([py, "-m", "gateway", "serve", "--config", str(config)], log)
    api = f"http://127.0.0.1:{ports['api']}"
    try:
        await wait_up(f"http://127.0.0.1:{ports['ops']}/healthz")
        body = batch_body(numbers(BIG_BATCH), image)
        async with aiohttp.ClientSession() as session:
            # A small batch first, so the content pipeline's own memory is in the baseline.
            await post_batch(session, api, batch_body(numbers(10), image))
            await asyncio.sleep(1.0)
            before = rss_peak_kib(gateway.pid)
            started = time.perf_counter()
            await post_batch(session, api, body)
            seconds = time.perf_counter() - started
            await asyncio.sleep(2.0)
            after = rss_peak_kib(gateway.pid)
    finally:
        stop(gateway)
    print(
        f"peak RSS: {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB after accepting "
        f"{BIG_BATCH} recipients ({len(body) / 1e6:.1f} MB request, answered in {seconds:.1f} s)"
    )
    return before, after, seconds


async def main() -> None:
    image = image_100k()
    with tempfile.TemporaryDirectory(prefix="mm7-bulk-") as tmp:
        tmpdir = Path(tmp)
        log = tmpdir / "log.txt"
        rate = await rate_run(tmpdir, image, log)
        before, after, big_seconds = await memory_run(tmpdir, image, log)
    result = {
        "name": "bulk",
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpu, "
        f"Python {platform.python_version()}",
        "metrics": {
            "recipients_per_second": {
                "ours": round(rate["ours"], 1),
                "baseline": round(rate["baseline"], 1),
                "unit": "recipients/s",
                "ratio": round(rate["ours"] / rate["baseline"], 3),
                "target": 0.5,
                "higher_is_better": True,
                "recipients": RECIPIENTS,
                "image_bytes": len(image),
                "post_seconds": round(rate["accept"], 2),
                "gateway_ms_cpu_per_recipient": round(rate["cpu"] * 1e3, 3),
            },
            "peak_rss_100k_batch": {
                "ours": round(after / 1024, 1),
                "baseline": round(before / 1024, 1),
                "unit": "MiB",
                "ratio": round(after / before, 3),
                "target": None,
                "higher_is_better": False,
                "recipients": BIG_BATCH,
                "post_seconds": round(big_seconds, 2),
            },
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
