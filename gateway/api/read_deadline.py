"""Slow-client protection for the API and MM7 listeners (slowloris, stalled uploads).

aiohttp's server has no read timeout of its own. Two limits close the gap:

* headers: aiohttp arms its keep-alive timer when a connection opens and after every
  answer, and closes the connection if no complete request has arrived when it fires, so
  the runner's ``keepalive_timeout`` bounds silent and half-sent-header connections;
* body: :func:`read_deadline_middleware` gives the request body the same time to arrive
  after the headers. When it has not all arrived by then the transport is closed, which
  makes the handler's pending read fail before anything is stored.

A handler that is busy after its body arrived (media adaptation, a store commit) is never
cut off: the deadline only looks at whether the body is complete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

log = structlog.get_logger("gateway.api.read_deadline")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def read_deadline_middleware(seconds: float) -> Middleware:
    """Close the connection of a request whose body is incomplete ``seconds`` after its headers."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.content.is_eof():
            return await handler(request)

        expired = False

        def expire() -> None:
            nonlocal expired
            if request.content.is_eof():
                return
            expired = True
            log.warning(
                "request body not received in time; closing the connection",
                path=request.path,
                seconds=seconds,
            )
            transport = request.transport
            if transport is not None:
                transport.close()

        timer = asyncio.get_running_loop().call_later(seconds, expire)
        try:
            return await handler(request)
        except Exception as exc:
            if expired:
                # The read failed because we closed the connection: say so (metrics and the
                # access log see a 408), not an internal error.
                raise web.HTTPRequestTimeout(reason="request body not received in time") from exc
            raise
        finally:
            timer.cancel()

    return middleware
