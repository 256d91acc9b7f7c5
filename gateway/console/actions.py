"""Console actions: log in and out, replay a dead-lettered webhook, send a test MMS."""

from __future__ import annotations

import hmac
import secrets

import structlog
from aiohttp import web

from gateway.console.context import DEPS, PREFIX, error_page, render, session_of
from gateway.console.session import LOGIN_CSRF_COOKIE, SESSION_COOKIE, tokens_match
from gateway.errors import ApiError
from gateway.numbers import normalise_number, normalise_sender
from gateway.outbound.request import MediaInput, SubmitRequest

log = structlog.get_logger("gateway.console")


def _login_page(
    request: web.Request, *, status: int = 200, error: str | None = None
) -> web.Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", status=status, login_csrf=token, error=error)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", secure=request.secure,
        path=f"{PREFIX}/login", max_age=3600,
    )  # fmt: skip
    return response


async def login_form(request: web.Request) -> web.Response:
    if session_of(request) is not None:
        raise web.HTTPSeeOther(f"{PREFIX}/")
    return _login_page(request)


def _admin_name(admin_keys: dict[str, str], given: str) -> str | None:
    """The admin key's name, comparing against every key in constant time."""
    found = None
    for key, name in admin_keys.items():
        if hmac.compare_digest(key.encode(), given.encode()):
            found = name
    return found


async def login(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    client = request.remote or "?"
    wait = deps.limiter.retry_after(client)
    if wait > 0:
        response = error_page(
            request, 429, "too_many_logins", f"Too many failed logins; try again in {wait:.0f} s."
        )
        response.headers["Retry-After"] = str(max(1, round(wait)))
        return response
    form = await request.post()
    if not tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")):
        return error_page(request, 403, "csrf_failed", "Missing or wrong CSRF token.")
    given = form.get("api_key")
    name = _admin_name(deps.admin_keys, given) if isinstance(given, str) and given else None
    if name is None:
        deps.limiter.failed(client)
        log.warning("console login refused", client=client)
        return _login_page(
            request, status=401, error="invalid_credentials: unknown key or not an admin key"
        )
    deps.limiter.succeeded(client)
    session = deps.sessions.create(name)
    log.info("console login", user=name, client=client)
    response = web.HTTPSeeOther(f"{PREFIX}/")
    response.set_cookie(
        SESSION_COOKIE, session.id, httponly=True, samesite="Strict", secure=request.secure,
        path=PREFIX, max_age=int(deps.sessions.ttl),
    )  # fmt: skip
    response.del_cookie(LOGIN_CSRF_COOKIE, path=f"{PREFIX}/login")
    raise response


async def logout(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    session = session_of(request)
    if session is not None:
        deps.sessions.end(session.id)
        log.info("console logout", user=session.user)
    response = web.HTTPSeeOther(f"{PREFIX}/login")
    response.del_cookie(SESSION_COOKIE, path=PREFIX)
    raise response


async def replay(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    form = await request.post()
    event_id = form.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        return error_page(request, 400, "missing_event_id", "Which event? event_id is missing.")
    if not await deps.store.replay_dead_letter(event_id, deps.clock()):
        return error_page(request, 404, "not_dead", f"No dead-lettered event {event_id}.")
    deps.wake_outbox()
    session = session_of(request)
    log.info("console replayed webhook", user=session.user if session else None, event_id=event_id)
    raise web.HTTPSeeOther(f"{PREFIX}/dead-letters?replayed={event_id}")


async def send_form(request: web.Request) -> web.Response:
    return render(request, "send.html", result=None, error=None, values={})


def _field(form: object, name: str) -> str:
    value = form.get(name) if hasattr(form, "get") else None
    return value.strip() if isinstance(value, str) else ""


async def send(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    session = session_of(request)
    form = await request.post()
    values = {k: _field(form, k) for k in ("to", "from", "subject", "text", "route")}
    upload = form.get("image")
    media: tuple[MediaInput, ...] = ()
    if isinstance(upload, web.FileField):
        data = upload.file.read()
        if data:
            media = (
                MediaInput(0, content_type=upload.content_type, data=data, name=upload.filename),
            )
    if not values["text"] and not media:
        return render(
            request, "send.html", status=400, result=None, values=values,
            error={"code": "empty_message", "message": "Give a text or an image.", "field": "text"},
        )  # fmt: skip
    try:
        request_ = SubmitRequest(
            to=(normalise_number(values["to"]),),
            sender=normalise_sender(values["from"]) if values["from"] else None,
            subject=values["subject"] or None,
            text=values["text"] or None,
            media=media,
            route=values["route"] or None,
            client_ref="console-test",
        )
        record = await deps.submit(session.user if session else "", request_)
    except ApiError as exc:
        return render(
            request, "send.html", status=exc.http_status, result=None, values=values,
            error={"code": exc.code, "message": exc.message, "field": exc.field},
        )  # fmt: skip
    log.info("console test message", user=session.user if session else None, message_id=record.id)
    return render(
        request, "send.html", status=202, values={}, error=None,
        result={"id": record.id, "status": record.status, "original": record.original_bytes,
                "adapted": record.adapted_bytes, "fallback": record.fallback,
                "uploaded": sum(len(m.data or b"") for m in media)},
    )  # fmt: skip
