"""Operations listener: ``/metrics``, ``/healthz`` (alive) and ``/readyz`` (able to work).

``/readyz`` answers 200 only when the store accepts a write within
``STORE_CHECK_TIMEOUT_SECONDS`` and no route's circuit is open; otherwise 503 with a JSON
body whose ``reasons`` list says why, so a load balancer drains us and an operator
sees the cause in one ``curl``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from gateway.ops.metrics import exposition


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthSources:
    """What the ops listener reads: narrow views of the gateway, handed in by the app."""

    registry: CollectorRegistry
    #: Raises when the store cannot take a write.
    check_store: Callable[[], Awaitable[None]]
    #: Route name -> circuit state (``closed``, ``degraded``, ``open``).
    circuits: Callable[[], Mapping[str, str]]
    #: Route name -> batches queued or in flight.
    queue_depths: Callable[[], Mapping[str, int]]


SOURCES: web.AppKey[HealthSources] = web.AppKey("health_sources", HealthSources)
#: Probes time out after 1 s by default (Kubernetes); a store write that takes longer
#: (a lock held elsewhere, a stalled disk) means not ready rather than a hung probe.
STORE_CHECK_TIMEOUT_SECONDS = 1.0

log = structlog.get_logger("gateway.ops.health")


async def metrics(request: web.Request) -> web.Response:
    sources = request.app[SOURCES]
    body, content_type = exposition(sources.registry, request.headers.get("Accept"))
    response = web.Response(body=body)
    # Set verbatim: the type carries parameters (version, charset) aiohttp would split.
    response.headers["Content-Type"] = content_type
    return response


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _retrieve(task: asyncio.Task[None]) -> None:
    # A check that outlived its probe: consume its outcome so asyncio does not report it.
    if not task.cancelled():
        task.exception()


async def _store_problem(sources: HealthSources) -> str | None:
    """None when the store took a write, else why not.

    The check is waited for, never cancelled: cancelling a store call while its operation
    is queued would leave the store's worker thread completing a cancelled future.
    """
    check = asyncio.ensure_future(sources.check_store())
    done, _ = await asyncio.wait({check}, timeout=STORE_CHECK_TIMEOUT_SECONDS)
    if not done:
        check.add_done_callback(_retrieve)
        return f"store: no write within {STORE_CHECK_TIMEOUT_SECONDS:g} s"
    try:
        check.result()
    except Exception as exc:  # a probe boundary: any failure to write means not ready
        log.warning("readiness store check failed", error=str(exc))
        return f"store: {exc}"
    return None


async def readyz(request: web.Request) -> web.Response:
    sources = request.app[SOURCES]
    problems: list[str] = []
    store_problem = await _store_problem(sources)
    if store_problem is not None:
        problems.append(store_problem)
    routes = dict(sources.circuits())
    problems.extend(
        f"route {name}: circuit open" for name, state in routes.items() if state == "open"
    )
    body = {
        "status": "ready" if not problems else "not_ready",
        "store": "ok" if store_problem is None else "error",
        "routes": routes,
        "queue": dict(sources.queue_depths()),
        "reasons": problems,
    }
    return web.json_response(body, status=200 if not problems else 503)


def add_ops_routes(app: web.Application, sources: HealthSources) -> None:
    app[SOURCES] = sources
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
