"""Benchmark: is the bundled mock MMSC fast enough never to be the bottleneck?

Run from the repository root (``make bench`` does): it starts ``python -m gateway
mock-mmsc`` in its own process and drives it with concurrent aiohttp clients POSTing one
encoded SubmitReq (a ~50 KB JPEG attached) for a fixed time; then, in the same run and
with the same client loop, it measures a raw aiohttp server (also its own process) that
only reads the body and answers a fixed small SOAP XML. The baseline is what aiohttp
itself costs on this machine, so the ratio shows what our decode/encode/fault logic
adds.

Writes ``bench/results/mock.json`` (DESIGN.md §10):
- ``submit_rate``: ours = mock requests/s, baseline = raw aiohttp requests/s, target
  0.5 (the mock may cost at most twice a do-nothing aiohttp server: that still leaves
  it several times faster than the gateway, which does the same MM7 work plus storage).
- ``server_cpu_per_request``: server CPU microseconds per request (lower is better),
  which stays meaningful even when the client loop is what saturates.

Usage: ``python bench/mock.py [--seconds 8] [--concurrency 32]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from protocol import Address, Attachment, Recipients, SubmitReq, encode  # noqa: E402

RESULTS = REPO / "bench" / "results" / "mock.json"
RAW_ANSWER = (
    b"<?xml version='1.0' encoding='utf-8'?>\n<env:Envelope xmlns:env="
    b'"http://schemas.xmlsoap.org/soap/envelope/"><env:Body><SubmitRsp xmlns='
    b'"http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4">'
    b"<MM7Version>6.8.0</MM7Version><Status><StatusCode>1000</StatusCode></Status>"
    b"<MessageID>raw</MessageID></SubmitRsp></env:Body></env:Envelope>"
)


def run_raw_server(port: int) -> None:
    """The baseline: an aiohttp server that reads the body and answers fixed XML."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=RAW_ANSWER, content_type="text/xml", charset="utf-8")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/mm7", handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def jpeg_of_about(size: int) -> bytes:
    """A noisy JPEG of roughly ``size`` bytes (noise does not compress)."""
    rng = random.Random(1)
    side = 64
    while True:
        img = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
        out = io.BytesIO()
        img.save(out, "JPEG", quality=75)
        if out.tell() >= size:
            return out.getvalue()
        side += 8


def submit_body() -> tuple[str, bytes]:
    message = SubmitReq(
        transaction_id="bench-1",
        recipients=Recipients(to=(Address.number("+15555550100"),)),
        subject="bench",
        delivery_report=False,
        attachments=(
            Attachment(content_type="image/jpeg", data=jpeg_of_about(50_000), content_id="img"),
        ),
    )
    return encode(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise RuntimeError(f"nothing listening on port {port} after {timeout} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(url: str, content_type: str, body: bytes, seconds: float, n: int) -> int:
    """POST ``body`` from ``n`` concurrent loops for ``seconds``; return the 200 count."""
    done = 0
    headers = {"Content-Type": content_type, "SOAPAction": '""'}
    connector = aiohttp.TCPConnector(limit=n)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def loop(deadline: float) -> None:
            nonlocal done
            while time.monotonic() < deadline:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status == 200:
                        done += 1

        await asyncio.gather(*(loop(time.monotonic() + 1.0) for _ in range(n)))  # warm-up
        done = 0
        await asyncio.gather(*(loop(time.monotonic() + seconds) for _ in range(n)))
    return done


def measure(
    cmd: list[str], port: int, body: tuple[str, bytes], args: argparse.Namespace
) -> dict[str, float]:
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(port, proc)
        cpu_before = cpu_seconds(proc.pid)
        started = time.monotonic()
        count = asyncio.run(
            drive(f"http://127.0.0.1:{port}/mm7", *body, args.seconds, args.concurrency)
        )
        elapsed = time.monotonic() - started - 1.0  # minus the warm-up second
        cpu = cpu_seconds(proc.pid) - cpu_before
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if count == 0:
        raise RuntimeError(f"no successful request against {' '.join(cmd)}")
    return {"rate": count / elapsed, "cpu_us": cpu / count * 1e6, "count": count}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--raw-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_server is not None:
        run_raw_server(args.raw_server)
        return 0
    body = submit_body()
    print(
        f"SubmitReq body: {len(body[1])} bytes; {args.concurrency} clients, {args.seconds} s each"
    )
    port = free_port()
    mock = measure(
        [sys.executable, "-m", "gateway", "mock-mmsc", "--listen", f"127.0.0.1:{port}"],
        port,
        body,
        args,
    )
    print(f"mock MMSC : {mock['rate']:8.0f} req/s, {mock['cpu_us']:6.0f} us CPU/req")
    port = free_port()
    raw = measure([sys.executable, __file__, "--raw-server", str(port)], port, body, args)
    print(f"raw aiohttp: {raw['rate']:8.0f} req/s, {raw['cpu_us']:6.0f} us CPU/req")
    ratio = mock["rate"] / raw["rate"]
    result = {
        "name": "mock",
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPU, "
        f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}",
        "metrics": {
            "submit_rate": {
                "ours": round(mock["rate"], 1),
                "baseline": round(raw["rate"], 1),
                "unit": "requests/s",
                "ratio": round(ratio, 3),
                "target": 0.5,
                "higher_is_better": True,
            },
            "server_cpu_per_request": {
                "ours": round(mock["cpu_us"], 1),
                "baseline": round(raw["cpu_us"], 1),
                "unit": "us",
                "ratio": round(mock["cpu_us"] / raw["cpu_us"], 3),
                "target": 2.0,
                "higher_is_better": False,
            },
        },
    }
    gateway_rate = _gateway_e2e_rate()
    if gateway_rate is not None:
        # Issue 3's requirement: the mock sustains >= 3x what the gateway reaches end to end
        # (bench/e2e.py, run just before this in `make bench`).
        result["metrics"]["vs_gateway_e2e_rate"] = {  # type: ignore[index]
            "ours": round(mock["rate"], 1),
            "baseline": gateway_rate,
            "unit": "requests/s",
            "ratio": round(mock["rate"] / gateway_rate, 2),
            "target": 3.0,
            "higher_is_better": True,
        }
        print(f"mock / gateway end-to-end rate: {mock['rate'] / gateway_rate:.1f} (target >= 3)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"submit_rate ratio {ratio:.2f} (target >= 0.5) -> {RESULTS.relative_to(REPO)}")
    return 0


def _gateway_e2e_rate(max_age_seconds: float = 3600.0) -> float | None:
    """The gateway's end-to-end rate from a recent bench/results/e2e.json, if there is one:
    its 50 KB image variant, the same kind of SubmitReq this benchmark sends."""
    path = RESULTS.parent / "e2e.json"
    try:
        if time.time() - path.stat().st_mtime > max_age_seconds:
            return None
        metrics = json.loads(path.read_text())["metrics"]
        figure = metrics.get("submit_rate_image_50k") or metrics["submit_rate"]
        return float(figure["ours"])
    except (OSError, KeyError, TypeError, ValueError):
        return None


if __name__ == "__main__":
    sys.exit(main())
