"""Fixtures for gateway tests: a mock MMSC and a gateway on loopback port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.app import Gateway
from gateway.config.model import GatewayConfig
from tests.gateway.callback_helpers import Receiver, TinyMmsc
from tests.gateway.support import RunningGateway, RunningMock


@pytest.fixture
async def mock_mmsc() -> AsyncIterator[Callable[..., Any]]:
    from gateway.mock_mmsc.app import create_app
    from gateway.mock_mmsc.config import MockSettings

    runners: list[web.AppRunner] = []

    async def start(port: int = 0, **settings: Any) -> RunningMock:
        app = create_app(replace(MockSettings(), **{"dr_delay": 0.05, **settings}))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        base = f"http://{host}:{port}"
        return RunningMock(url=base + "/mm7", base=base, app=app, runner=runner)

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def run_gateway() -> AsyncIterator[Callable[..., Any]]:
    started: list[RunningGateway] = []

    async def start(config: GatewayConfig, **options: Any) -> RunningGateway:
        gateway = Gateway(config, **options)
        await gateway.start()
        listeners = gateway.listeners
        assert listeners.api and listeners.mm7 and listeners.ops
        running = RunningGateway(
            gateway=gateway,
            api="http://%s:%d" % listeners.api,
            mm7="http://%s:%d" % listeners.mm7,
            ops="http://%s:%d" % listeners.ops,
            session=aiohttp.ClientSession(),
        )
        started.append(running)
        return running

    yield start
    for running in started:
        await running.session.close()
        if running.gateway.listeners.runners:
            await running.gateway.stop()


@pytest.fixture
async def mmsc() -> AsyncIterator[TinyMmsc]:
    """A minimal in-process MMSC answering SubmitReq (the callback tests' peer)."""
    tiny = TinyMmsc()
    await tiny.start()
    yield tiny
    await tiny.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on loopback that records what it is sent."""
    hook = Receiver()
    await hook.start()
    yield hook
    await hook.stop()
