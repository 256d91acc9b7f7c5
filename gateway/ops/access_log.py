# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Access logs of the API and MM7 listeners: one structlog event per HTTP request.

An application opts in with ``enable_access_log(app, "api")``; the app factory then
starts its runner with ``access_log=access_logger_for(app)`` and
``access_log_class=AccessLogger``. aiohttp calls ``AccessLogger.log`` after the response
is written, so ``bytes`` is what was really sent (streamed media included) and requests
that never reach a handler (404, 405, bad request lines) are logged too.

Each event (logger ``gateway.access.<listener>``, event ``http request``) carries
``listener``, ``method``, ``path``, ``route`` (the matched template, ``/v1/messages/{id}``,
or null), ``status``, ``duration_seconds``, ``bytes`` (written to the socket, headers
included, like aiohttp's ``%b``), ``peer`` and, on the API, ``request_id``. Never the
query string (signed media URLs carry their signature there) and never bodies. 5xx
answers log at warning level, the rest at info.

The ops listener is not access-logged on purpose: a scrape every few seconds is noise.
"""

from __future__ import annotations

import logging
from typing import Final

import structlog
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

LOGGER_PREFIX: Final = "gateway.access"
EVENT: Final = "http request"
LISTENER: web.AppKey[str] = web.AppKey("access_log_listener", str)


def enable_access_log(app: web.Application, listener: str) -> None:
    """Mark ``app`` as access-logged under ``listener`` (``api``, ``mm7``)."""
    app[LISTENER] = listener


def access_logger_for(app: web.Application) -> logging.Logger | None:
    """The stdlib logger to give ``web.AppRunner(access_log=...)``; None: no access log."""
    listener = app.get(LISTENER)
    return None if listener is None else logging.getLogger(f"{LOGGER_PREFIX}.{listener}")


def route_template(request: BaseRequest) -> str | None:
    """The matched resource's canonical template, or None when nothing matched.

    A request that failed before routing (a malformed request line) is a bare
    ``BaseRequest`` without ``match_info``.
    """
    match_info = getattr(request, "match_info", None)
    if match_info is None or match_info.http_exception is not None:
        return None
    resource = match_info.route.resource
    return None if resource is None else resource.canonical


class AccessLogger(AbstractAccessLogger):
    """Renders aiohttp's access log through structlog (see the module docstring)."""

    @property
    def enabled(self) -> bool:
        # aiohttp skips building the entry altogether when this is False.
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        listener = self.logger.name.removeprefix(f"{LOGGER_PREFIX}.")
        fields: dict[str, object] = {
            "listener": listener,
            "method": request.method,
            # .path has no query string: signed media URLs keep their signature out of logs.
            "path": request.path,
            "route": route_template(request),
            "status": response.status,
            "duration_seconds": round(time, 6),
            "bytes": response.body_length,
            "peer": request.remote,
        }
        request_id = response.headers.get("X-Request-ID")
        if request_id is not None:
            fields["request_id"] = request_id
        logger = structlog.get_logger(self.logger.name)
        if response.status >= 500:
            logger.warning(EVENT, **fields)
        else:
            logger.info(EVENT, **fields)
