"""``mm7-gateway demo``: a mock MMSC and a gateway on embedded defaults, one MMS each way.

Everything runs in one process and a temporary directory: SQLite store, media store,
the bundled mock MMSC. The demo prints each lifecycle step as it happens and exits 0
only if the whole round trip worked, so ``make demo`` doubles as a smoke test.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.app import Gateway
from gateway.config.model import GatewayConfig
from gateway.ops.log_setup import configure_logging

DEMO_KEY = "demo-key-not-secret"
DEMO_TO = "+12025550123"
_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "media" / "tiny.jpg"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    parser.add_argument("--timeout", type=float, default=30.0, help="give up after SECONDS")


class Printer:
    """Progress lines: coloured ticks on a terminal, plain text otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.started = time.monotonic()

    def step(self, text: str, detail: str = "") -> None:
        elapsed = f"{time.monotonic() - self.started:5.2f}s"
        if self.tty:
            print(f"\033[2m{elapsed}\033[0m \033[32m✔\033[0m {text} \033[2m{detail}\033[0m")
        else:
            print(f"{elapsed} {text} {detail}".rstrip())
        sys.stdout.flush()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _demo_image() -> bytes:
    if _FIXTURE.exists():
        return _FIXTURE.read_bytes()
    from PIL import Image, ImageDraw  # noqa: PLC0415 - only when the fixture is missing

    image = Image.new("RGB", (160, 120), (30, 90, 160))
    ImageDraw.Draw(image).text((10, 50), "mm7-gateway", fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def demo_config(data_dir: Path, mock_port: int) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "gateway": {"data_dir": str(data_dir), "shutdown_grace_seconds": 2.0},
            "listen": {"api": "127.0.0.1:0", "mm7": "127.0.0.1:0", "ops": "127.0.0.1:0"},
            "logging": {"level": "warning"},
            "api_keys": [{"name": "demo", "key": DEMO_KEY}],
            "mmsc": [
                {
                    "name": "mock",
                    "url": f"http://127.0.0.1:{mock_port}/mm7",
                    "vasp_id": "demo-vasp",
                    "vas_id": "demo-service",
                    "sender": "12345",
                    "tps": 10.0,
                }
            ],
        }
    )


async def _json(response: aiohttp.ClientResponse) -> Any:
    return await response.json(content_type=None)


async def run_demo(limit_seconds: float, *, keep: bool) -> int:
    from gateway.mock_mmsc.app import create_app  # noqa: PLC0415 - demo-only dependency
    from gateway.mock_mmsc.config import MockSettings  # noqa: PLC0415

    out = Printer()
    data_dir = Path(tempfile.mkdtemp(prefix="mm7-demo-"))
    mock_port = _free_port()
    gateway = Gateway(demo_config(data_dir, mock_port))
    await gateway.start()
    listeners = gateway.listeners
    if listeners.api is None or listeners.mm7 is None or listeners.ops is None:
        raise RuntimeError("gateway listeners did not start")
    api = "http://{}:{}".format(*listeners.api)
    mm7 = "http://{}:{}/mm7".format(*listeners.mm7)
    ops = "http://{}:{}".format(*listeners.ops)
    out.step("gateway started", f"api {api}  mm7 {mm7}  ops {ops}  data {data_dir}")
    mock_app = create_app(replace(MockSettings(), vasp_url=mm7, dr_delay=0.5, seed=1))
    mock_runner = web.AppRunner(mock_app)
    await mock_runner.setup()
    await web.TCPSite(mock_runner, "127.0.0.1", mock_port).start()
    out.step("mock MMSC started", f"http://127.0.0.1:{mock_port}/mm7")
    headers = {"Authorization": f"Bearer {DEMO_KEY}"}
    deadline = time.monotonic() + limit_seconds
    try:
        async with aiohttp.ClientSession() as http:
            image = _demo_image()
            body = {
                "to": DEMO_TO,
                "from": "12345",
                "subject": "Hello from mm7-gateway",
                "text": "This MMS went REST -> SQLite -> MM7 SubmitReq -> mock MMSC.",
                "media": [{"content_type": "image/jpeg", "data": base64.b64encode(image).decode()}],
            }
            async with http.post(api + "/v1/messages", json=body, headers=headers) as r:
                message = await _json(r)
                if r.status != 202:
                    out.step("submission refused", str(message))
                    return 1
            out.step("queued", f"id {message['id']}, {len(image)} byte JPEG, to {DEMO_TO}")
            seen = {"queued"}
            while time.monotonic() < deadline:
                async with http.get(f"{api}/v1/messages/{message['id']}", headers=headers) as r:
                    message = await _json(r)
                status = message["status"]
                if status not in seen:
                    seen.add(status)
                    if status == "submitted":
                        out.step("submitted", f"MM7 MessageID {message['mm7_message_id']}")
                    else:
                        out.step(status, "from the MMSC's delivery report")
                if status in ("delivered", "read", "failed", "rejected", "expired"):
                    break
                await asyncio.sleep(0.05)
            if message["status"] != "delivered":
                out.step("did not reach delivered", f"status {message['status']}")
                return 1
            deliver = {
                "from": "+12025550199",
                "to": "12345",
                "subject": "Inbound demo",
                "text": "A reply with a picture",
                "media": [{"fixture": "tiny.png"}],
            }
            async with http.post(f"http://127.0.0.1:{mock_port}/admin/deliver", json=deliver) as r:
                answer = await _json(r)
                if r.status != 200:
                    out.step("mock could not deliver the inbound MMS", str(answer))
                    return 1
            async with http.get(api + "/v1/inbound", headers=headers) as r:
                inbound = await _json(r)
            items = inbound.get("data", [])
            if not items:
                out.step("inbound MMS not found")
                return 1
            latest = items[0]
            out.step(
                "inbound MMS received",
                f"from {latest.get('from')} to {latest.get('to')}: {latest.get('subject')!r}",
            )
            for part in latest.get("media", []):
                if part.get("text"):
                    out.step("  text part", repr(part["text"]))
                    continue
                async with http.get(part["url"]) as r:
                    size = len(await r.read())
                    if r.status != 200:
                        out.step("media URL failed", f"HTTP {r.status}")
                        return 1
                out.step(
                    "  media URL works", f"{part.get('content_type')} {size} bytes {part['url']}"
                )
            out.step("metrics", f"{ops}/metrics")
            async with http.get(ops + "/metrics") as r:
                for line in (await r.text()).splitlines():
                    wanted = ("mm7gw_messages_accepted_total{", "mm7gw_delivery_reports_total{")
                    if line.startswith(wanted) and not line.endswith(" 0.0"):
                        print(f"         {line}")
        return 0
    finally:
        await mock_runner.cleanup()
        await gateway.stop()
        out.step("stopped cleanly")
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    configure_logging(level="warning", fmt="console")
    try:
        return asyncio.run(run_demo(args.timeout, keep=args.keep))
    except OSError as exc:
        print(f"error: demo could not start: {exc}", file=sys.stderr)
        return 1
