"""Operations listener: ``/metrics``, ``/healthz`` (alive), ``/healthz/routes`` and
``/readyz`` (able to accept work).

``/healthz`` answers 503 when a background task is dead for good or the store cannot run
operations any more: a restart is the cure, so the orchestrator should do it.
``/readyz`` answers 200 when the gateway can accept and store work, i.e. the store takes
a write within ``STORE_CHECK_TIMEOUT_SECONDS``; otherwise 503 with a JSON body whose
``reasons`` list says why. Route health (circuits) is reported in its body and in
``/healthz/routes`` but never makes the whole gateway unready: one carrier being down must
not take a healthy API out of a load balancer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
    #: Why the process is not alive (dead tasks, a dead store); empty when it is.
    liveness: Callable[[], Sequence[str]] = tuple


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


async def healthz(request: web.Request) -> web.Response:
    problems = list(request.app[SOURCES].liveness())
    if problems:
        return web.json_response({"status": "dead", "reasons": problems}, status=503)
    return web.json_response({"status": "ok"})


async def route_health(request: web.Request) -> web.Response:
    """Each route's circuit and queue; 200 whatever their state (informational)."""
    sources = request.app[SOURCES]
    depths = sources.queue_depths()
    routes = {
        name: {"circuit": state, "queue": depths.get(name, 0)}
        for name, state in sources.circuits().items()
    }
    return web.json_response({"routes": routes})


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
    app.router.add_get("/healthz/routes", route_health)
    app.router.add_get("/readyz", readyz)
