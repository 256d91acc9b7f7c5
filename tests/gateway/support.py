"""Helpers shared by gateway tests: configs on tmp_path, running mock MMSC and gateway handles."""

from __future__ import annotations

import asyncio
import base64
import io
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image

from gateway.app import Gateway
from gateway.config.model import GatewayConfig

API_KEY = "test-key-0123456789"


def make_config(data_dir: Any, mmsc_url: str, **overrides: Any) -> GatewayConfig:
    """A valid config on loopback port 0; ``mmsc_*`` keys override the single route."""
    mmsc: dict[str, Any] = {
        "name": "mock",
        "url": mmsc_url,
        "vasp_id": "vasp1",
        "vas_id": "svc1",
        "sender": "12345",
        "tps": 0.0,
        "max_in_flight": 8,
        "retry": {"initial_backoff_seconds": 0.05, "max_backoff_seconds": 0.5, "jitter": 0.0},
    }
    mmsc.update({k[5:]: v for k, v in overrides.items() if k.startswith("mmsc_")})
    raw: dict[str, Any] = {
        "gateway": {"data_dir": str(data_dir), "shutdown_grace_seconds": 2.0},
        "listen": {"api": "127.0.0.1:0", "mm7": "127.0.0.1:0", "ops": "127.0.0.1:0"},
        "api_keys": [{"name": "test", "key": API_KEY}],
        "mmsc": [mmsc],
    }
    for key, value in overrides.items():
        if not key.startswith("mmsc_"):
            section, _, name = key.partition("__")
            if not name:  # a whole section or array of tables (``pool=[...]``)
                raw[section] = value
                continue
            raw.setdefault(section, {})[name] = value
    return GatewayConfig.model_validate(raw)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def noisy_jpeg(size: tuple[int, int] = (400, 300)) -> bytes:
    """A JPEG that compresses badly (random pixels), deterministic."""
    import random

    rng = random.Random(3)
    image = Image.new("RGB", size)
    image.putdata(
        [
            (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            for _ in range(size[0] * size[1])
        ]
    )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def jpeg_bytes(size: tuple[int, int] = (64, 48), quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@dataclass
class RunningMock:
    url: str
    base: str
    app: web.Application
    runner: web.AppRunner

    async def stats(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.get(self.base + "/admin/stats") as r:
            result: dict[str, Any] = await r.json()
            return result

    async def configure(self, **values: Any) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.base + "/admin/config", json=values) as r,
        ):
            assert r.status == 200, await r.text()


@dataclass
class RunningGateway:
    gateway: Gateway
    api: str
    mm7: str
    ops: str
    session: aiohttp.ClientSession

    async def submit(self, body: dict[str, Any], **headers: str) -> tuple[int, dict[str, Any]]:
        async with self.session.post(
            self.api + "/v1/messages",
            json=body,
            headers={"Authorization": f"Bearer {API_KEY}", **headers},
        ) as response:
            return response.status, await response.json()

    async def get(self, message_id: str) -> dict[str, Any]:
        async with self.session.get(
            f"{self.api}/v1/messages/{message_id}", headers={"Authorization": f"Bearer {API_KEY}"}
        ) as response:
            assert response.status == 200
            result: dict[str, Any] = await response.json()
            return result

    async def wait_status(
        self, message_id: str, statuses: set[str], timeout: float = 10.0
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            resource = await self.get(message_id)
            if resource["status"] in statuses:
                return resource
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"message stayed {resource['status']}: {resource}")
            await asyncio.sleep(0.02)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
