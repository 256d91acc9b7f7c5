"""Fixtures of the reliability suites: in-process gateways and mock MMSCs, cleaned up after."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from gateway.app import Gateway
from gateway.config.model import GatewayConfig
from tests.gateway.support import RunningGateway
from tests.reliability.helpers import InProcessMock, start_mock


@pytest.fixture
async def run_gateway() -> AsyncIterator[Callable[..., Any]]:
    """Start a ``Gateway`` in this process; every one started is stopped afterwards."""
    started: list[RunningGateway] = []

    async def start(config: GatewayConfig) -> RunningGateway:
        gateway = Gateway(config)
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
async def mocks() -> AsyncIterator[Callable[..., Any]]:
    """Start in-process mock MMSCs (``helpers.start_mock`` arguments); all stopped after."""
    started: list[InProcessMock] = []

    async def start(**kwargs: Any) -> InProcessMock:
        mock = await start_mock(**kwargs)
        started.append(mock)
        return mock

    yield start
    for mock in started:
        await mock.stop()
