"""Helpers for sender-pool tests: a gateway wired to the bundled mock MMSC (with its
recorder on, so tests read what really reached the MMSC), an injectable clock, and
requests to the consent API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from gateway.app import Gateway
from gateway.config.model import GatewayConfig
from protocol import SubmitReq, decode
from tests.gateway.support import API_KEY, RunningGateway, RunningMock, free_port, make_config

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@dataclass(frozen=True)
class Seen:
    """A SubmitReq as the mock recorded it."""

    at: float
    sender: str
    to: tuple[str, ...]
    texts: tuple[str, ...]
    media: bool


class Clock:
    """A settable clock (starts at ``start``, then advances with real time)."""

    def __init__(self, start: float) -> None:
        self.offset = start - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


async def start_mock(mock_mmsc: Callable[..., Any], record: Path) -> tuple[RunningMock, int]:
    """The mock, recording, and the MM7 port it delivers to (ours, reserved first)."""
    port = free_port()
    mock = await mock_mmsc(
        vasp_url=f"http://127.0.0.1:{port}/mm7/mock", callback_backoff=0.05, record=record
    )
    return mock, port


def pool_config(
    data_dir: Path, mock: RunningMock, port: int, pools: list[dict[str, Any]], **overrides: Any
) -> GatewayConfig:
    return make_config(data_dir, mock.url, pool=pools, listen__mm7=f"127.0.0.1:{port}", **overrides)


@asynccontextmanager
async def gateway(
    config: GatewayConfig, clock: Callable[[], float] = time.time
) -> AsyncIterator[RunningGateway]:
    gw = Gateway(config, clock=clock)
    await gw.start()
    assert gw.listeners.api and gw.listeners.mm7 and gw.listeners.ops
    session = aiohttp.ClientSession()
    try:
        yield RunningGateway(
            gateway=gw,
            api="http://%s:%d" % gw.listeners.api,
            mm7="http://%s:%d" % gw.listeners.mm7,
            ops="http://%s:%d" % gw.listeners.ops,
            session=session,
        )
    finally:
        await session.close()
        await gw.stop()


async def call(
    gw: RunningGateway, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    async with gw.session.request(method, gw.api + path, json=body, headers=AUTH) as response:
        return response.status, await response.json()


def seen(record: Path) -> list[Seen]:
    """Every SubmitReq the mock received, in arrival order (file time: when it was read)."""
    out = []
    for path in sorted(record.glob("*-in-request.http")):
        raw = path.read_bytes()
        head, blank, body = raw.partition(b"\r\n\r\n")
        if not blank or not body:
            continue  # the mock's recorder is still writing it (write_bytes is not atomic)
        headers = {
            k.lower(): v
            for k, _, v in (line.partition(": ") for line in head.decode("latin-1").split("\r\n"))
        }
        message = decode(body, headers.get("content-type"))
        if not isinstance(message, SubmitReq):
            continue
        ident = message.sender_identification
        assert ident is not None and ident.sender_address is not None
        leaves = [p for a in message.attachments for p in a.walk() if not p.is_multipart]
        out.append(
            Seen(
                at=path.stat().st_mtime,
                sender=ident.sender_address.value,
                to=tuple(a.value for a in message.recipients.all()),
                texts=tuple(
                    p.data.decode() for p in leaves if p.content_type.startswith("text/plain")
                ),
                media=any(p.content_type.startswith("image/") for p in leaves),
            )
        )
    return out


async def wait_seen(record: Path, count: int, timeout: float = 15.0) -> list[Seen]:
    async with asyncio.timeout(timeout):
        while len(found := seen(record)) < count:
            await asyncio.sleep(0.05)
    return found


async def metric(gw: RunningGateway, name: str, **labels: str) -> float:
    async with gw.session.get(gw.ops + "/metrics") as response:
        text = await response.text()
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{"):
            series, value = line.rsplit(" ", 1)
            inner = series[len(name) + 1 : -1]
            if ",".join(sorted(inner.split(","))) == wanted:
                return float(value)
    raise AssertionError(f"no series {name}{{{wanted}}}")
