"""What every console view shares: its collaborators (handed in by ``install.py``), the
session lookup and HTML rendering with the console's security headers.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import jinja2
from aiohttp import web

from gateway.console.charts import CounterSampler
from gateway.console.session import SESSION_COOKIE, LoginLimiter, Session, Sessions
from gateway.outbound.request import SubmitRequest
from gateway.store import Batch, MessageRecord, Store

HERE: Final = Path(__file__).parent
PREFIX: Final = "/console"


@dataclass(frozen=True, slots=True)
class RouteStatus:
    """What the overview shows of one route, read live from its worker and queue."""

    name: str
    circuit: str
    configured_tps: float  # 0 = unlimited
    allowed_tps: float  # after slow-downs
    queue_depth: int
    in_flight: int


@dataclass(kw_only=True)
class ConsoleDeps:
    """The narrow collaborators ``install.py`` hands the console."""

    store: Store
    #: Admin API key -> its name (only ``role = "admin"`` keys log in).
    admin_keys: dict[str, str]
    route_status: Callable[[], list[RouteStatus]]
    sampler: CounterSampler
    #: The SubmitReq the worker would send for a stored message and batch: (type, body).
    reencode: Callable[[MessageRecord, Batch], Awaitable[tuple[str, bytes]]]
    submit: Callable[[str, SubmitRequest], Awaitable[MessageRecord]]
    media: Callable[[str], Awaitable[bytes]]
    thumbs_dir: Path
    wake_outbox: Callable[[], None]
    #: Configured sender pools -> their consent rule ("opt_in" | "opt_out").
    pools: dict[str, str] = field(default_factory=dict)
    mask_numbers: bool = True
    session_ttl_seconds: float = 8 * 3600.0
    clock: Callable[[], float] = time.time
    sessions: Sessions = field(init=False)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    templates: jinja2.Environment = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = Sessions(self.session_ttl_seconds, self.clock)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )


DEPS: Final = web.AppKey("console_deps", ConsoleDeps)


def session_of(request: web.Request) -> Session | None:
    return request.app[DEPS].sessions.get(request.cookies.get(SESSION_COOKIE))


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    deps = request.app[DEPS]
    session = session_of(request)
    html = deps.templates.get_template(template).render(
        session=session, prefix=PREFIX, path=request.path, **context
    )
    response = web.Response(text=html, status=status, content_type="text/html")
    # Pages show customer data: never cached, never framed, scripts only from us.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    )
    return response


def error_page(request: web.Request, status: int, code: str, message: str) -> web.Response:
    return render(request, "error.html", status=status, code=code, message=message)
