"""API middlewares: request counting, request ids + log context, API keys, error envelopes."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.errors import ApiError, AuthError
from gateway.ops.access_log import route_template
from gateway.ops.log_context import bound_context
from gateway.ops.metrics import Metrics

log = structlog.get_logger("gateway.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API_KEY_NAME: web.RequestKey[str] = web.RequestKey("api_key_name", str)


def error_response(error: ApiError) -> web.Response:
    response = web.json_response(error.to_json(), status=error.http_status)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(int(error.retry_after))
    if error.http_status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="mm7-gateway"'
    return response


def errors_middleware(new_request_id: Callable[[], str]) -> Middleware:
    """The error envelope for every ``ApiError``, and a request id bound to the logs
    (the client's ``X-Request-ID``, else ``new_request_id()``)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request.headers.get("X-Request-ID") or new_request_id()
        with bound_context(request_id=request_id):
            try:
                response = await handler(request)
            except ApiError as exc:
                response = error_response(exc)
            except web.HTTPException as exc:
                if exc.status >= 400:
                    code = {
                        404: "not_found",
                        405: "method_not_allowed",
                        408: "request_timeout",
                        413: "payload_too_large",
                    }.get(exc.status, "http_error")
                    response = web.json_response(
                        {"error": {"code": code, "message": exc.reason, "field": None}},
                        status=exc.status,
                    )
                else:
                    raise
            except ConnectionError:
                # The client hung up mid-request (its body never fully arrived): nothing was
                # stored and nobody is left to answer. 499, as nginx logs it: not a server error.
                log.info("client closed the connection before the request was read")
                response = web.json_response(
                    {"error": {"code": "client_closed_request", "message": "", "field": None}},
                    status=499,
                )
            except Exception:
                log.exception("unhandled error in API handler")
                error = {"code": "internal_error", "message": "internal error", "field": None}
                response = web.json_response({"error": error}, status=500)
            response.headers["X-Request-ID"] = request_id
            return response

    return middleware


def metrics_middleware(metrics: Metrics) -> Middleware:
    """Count every request in ``mm7gw_api_requests_total{method,route,status}``.

    Outermost, so it sees the status ``errors_middleware`` answered with. ``route`` is the
    matched template; unmatched requests (404) count under ``unmatched``, never their path.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_template(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # redirects and the like, re-raised below
            metrics.api_request(request.method, route, exc.status)
            raise
        except Exception:
            # errors_middleware answers every error; this is only a safety net: count, re-raise.
            metrics.api_request(request.method, route, 500)
            raise
        metrics.api_request(request.method, route, response.status)
        return response

    return middleware


def auth_middleware(
    keys: dict[str, str], public_prefixes: tuple[str, ...]
) -> Callable[..., object]:
    """Bearer API keys, compared in constant time; ``keys`` maps key -> key name."""
    encoded = [(key.encode(), name) for key, name in keys.items()]

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(public_prefixes):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthError("missing Bearer API key")
        presented = token.strip().encode()
        found = None
        for key, name in encoded:
            if hmac.compare_digest(key, presented):
                found = name
        if found is None:
            raise AuthError("unknown API key")
        request[API_KEY_NAME] = found
        with bound_context(api_key=found):
            return await handler(request)

    return middleware
