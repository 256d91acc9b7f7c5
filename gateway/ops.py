"""Operations listener: ``/metrics``, ``/healthz`` (alive) and ``/readyz`` (able to work)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.errors import StoreError

if TYPE_CHECKING:
    from gateway.app import Gateway

GATEWAY: web.AppKey[Any] = web.AppKey("gateway", object)


async def metrics(request: web.Request) -> web.Response:
    gateway: Gateway = request.app[GATEWAY]
    body = generate_latest(gateway.registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    gateway: Gateway = request.app[GATEWAY]
    problems: list[str] = []
    try:
        await gateway.store.check_writable()
        store = "ok"
    except StoreError as exc:
        store = "error"
        problems.append(f"store: {exc}")
    routes = {name: worker.circuit for name, worker in gateway.workers.items()}
    problems.extend(
        f"route {name}: circuit open" for name, state in routes.items() if state == "open"
    )
    body = {
        "status": "ready" if not problems else "not_ready",
        "store": store,
        "routes": routes,
        "queue": dict(gateway.queue.depth),
        "reasons": problems,
    }
    return web.json_response(body, status=200 if not problems else 503)


def add_ops_routes(app: web.Application, gateway: Gateway) -> None:
    app[GATEWAY] = gateway
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
