"""Fixtures for gateway tests: a mock MMSC and a gateway on loopback port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.app import Gateway
from gateway.config.model import GatewayConfig
from gateway.store import SqliteStore, Store
from gateway.store.postgresql import PostgresStore
from tests.gateway import pg_support
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


# -- store backends --------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
async def open_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    """``await open_store(instance="gw-a", lease=30.0)``: a store of the parametrised
    backend, opened; each call is another "gateway" on the same database. PostgreSQL
    stores start from emptied tables of the session database."""
    opened: list[Store] = []
    url = ""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        pg_support.truncate_all(url)

    async def open_one(instance: str = "gw-a", lease: float = 30.0) -> Store:
        store: Store
        if request.param == "sqlite":
            store = SqliteStore(tmp_path / "db.sqlite3")
        else:
            store = PostgresStore(url, pool_size=4, instance_id=instance, lease_seconds=lease)
        await store.open()
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


@pytest.fixture
async def any_store(open_store: Callable[..., Any]) -> Store:
    """One opened store of each backend (the store contract runs on both)."""
    store: Store = await open_store()
    return store
