"""Mounts the console on the API application: the session guard and the page table
(DESIGN.md section 14 fixes the URLs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.console import actions, pages, subscribers
from gateway.console.context import DEPS, HERE, PREFIX, ConsoleDeps, error_page, session_of
from gateway.console.session import tokens_match

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guarded(handler: Handler) -> Handler:
    """Pages need a session (else: the login page); POSTs also a matching CSRF token."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        session = session_of(request)
        if session is None:
            raise web.HTTPSeeOther(f"{PREFIX}/login")
        if request.method == "POST":
            form = await request.post()
            if not tokens_match(session.csrf, form.get("csrf")):
                return error_page(request, 403, "csrf_failed", "Missing or wrong CSRF token.")
        return await handler(request)

    return wrapper


def add_console(app: web.Application, deps: ConsoleDeps) -> None:
    app[DEPS] = deps
    r = app.router
    r.add_get(f"{PREFIX}/login", actions.login_form)
    r.add_post(f"{PREFIX}/login", actions.login)
    r.add_post(f"{PREFIX}/logout", guarded(actions.logout))
    r.add_get(f"{PREFIX}/", guarded(pages.overview))
    r.add_get(PREFIX, guarded(pages.overview))
    r.add_get(f"{PREFIX}/messages", guarded(pages.messages))
    r.add_get(f"{PREFIX}/messages/{{id}}", guarded(pages.timeline))
    r.add_get(f"{PREFIX}/messages/{{id}}/submit/{{batch}}", guarded(pages.submit_download))
    r.add_get(f"{PREFIX}/inbound", guarded(pages.inbound))
    r.add_get(f"{PREFIX}/thumbs/{{sha256}}", guarded(pages.thumbnail))
    r.add_get(f"{PREFIX}/dead-letters", guarded(pages.dead_letters))
    r.add_post(f"{PREFIX}/dead-letters/replay", guarded(actions.replay))
    r.add_get(f"{PREFIX}/subscribers", guarded(subscribers.subscribers))
    r.add_post(f"{PREFIX}/subscribers", guarded(subscribers.change))
    r.add_get(f"{PREFIX}/send", guarded(actions.send_form))
    r.add_post(f"{PREFIX}/send", guarded(actions.send))
    r.add_static(f"{PREFIX}/static", HERE / "static", append_version=False)
