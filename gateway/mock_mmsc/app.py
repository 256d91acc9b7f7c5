"""The mock MMSC's application factory: ``create_app(settings)`` wires everything.

Routes: ``POST /mm7`` and the ``GET``/``HEAD /mm7`` probe (``mm7.py``), ``/admin/*``
(``admin.py``), ``GET /metrics``. The callback HTTP session is opened and closed in a
cleanup context, which also cancels the delivery reports still waiting when the app
stops. Each app has its own Prometheus registry, so several mocks can run in one test
process.
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from gateway.mock_mmsc import admin
from gateway.mock_mmsc.callbacks import CallbackClient
from gateway.mock_mmsc.config import MockSettings
from gateway.mock_mmsc.mm7 import handle_mm7, handle_probe
from gateway.mock_mmsc.recorder import Recorder
from gateway.mock_mmsc.state import STATE, MockState
from gateway.mock_mmsc.stats import Metrics, Stats

#: Largest request body read at all (``max_message_bytes`` decides what is accepted).
CLIENT_MAX_SIZE = 64 * 1024 * 1024


def create_app(
    settings: MockSettings,
    *,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> web.Application:
    """Build a mock MMSC application.

    Args:
        settings: what to answer and which faults to inject.
        rng: the one source of randomness (fault draws, delivery outcomes); by default
            ``random.Random(settings.seed)``.
        clock: monotonic seconds, for the tps limit and the submit-rate window.
    """
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    state = MockState(
        settings=settings,
        rng=rng if rng is not None else random.Random(settings.seed),
        clock=clock,
        stats=Stats(clock=clock, window=settings.stats_window, last=settings.stats_last),
        metrics=Metrics(CollectorRegistry(auto_describe=True)),
        recorder=Recorder(settings.record) if settings.record is not None else None,
    )
    app[STATE] = state
    app.router.add_post("/mm7", handle_mm7)
    app.router.add_get("/mm7", handle_probe)  # and HEAD
    app.router.add_routes(admin.routes())
    app.router.add_get("/metrics", metrics)
    app.cleanup_ctx.append(_callback_session)
    return app


async def _callback_session(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    settings = state.settings
    headers = {}
    if settings.callback_username is not None:
        # Built by hand: aiohttp.BasicAuth is deprecated from 3.14, its replacement is new.
        pair = f"{settings.callback_username}:{settings.callback_password or ''}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    async with aiohttp.ClientSession(headers=headers) as session:
        state.callbacks = CallbackClient(
            session, lambda: state.settings, state.stats, state.metrics, state.recorder
        )
        try:
            yield
        finally:
            await state.callbacks.cancel_all()
            state.callbacks = None


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[STATE].metrics.registry
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
