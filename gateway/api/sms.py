"""Public routes of the SMS fallback on the API listener (no API key; DESIGN.md §13).

``GET /sms/dlr``: Kannel's delivery reports (token in the URL, optional allow-list).
``GET /m/{code}``: the short link of a fallback SMS. One media part is served as is;
several get a small page sized for a handset showing each (``/m/{code}/{n}``). Lookups
of unknown or expired codes count against the client (429 past the limit).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.api.inbound import servable_type
from gateway.errors import NotFoundError, RateLimited
from gateway.sms.fallback import has_media

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.media.short_links import MissLimiter
    from gateway.media.store import MediaStorage
    from gateway.ops.sms_metrics import SmsMetrics
    from gateway.sms.dlr import DlrIntake
    from gateway.store import PartRef, Store

_MEDIA_HEADERS = {
    "Cache-Control": "private, max-age=300",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}
_PAGE_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"


def media_page(code: str, parts: list[PartRef]) -> str:
    """A minimal page that shows images, audio and video inline and links the rest."""
    items = []
    for n, part in enumerate(parts):
        src = f"/m/{html.escape(code)}/{n}"
        kind = part.content_type.split("/", 1)[0]
        if kind == "image":
            items.append(f'<img src="{src}" alt="">')
        elif kind in ("audio", "video"):
            items.append(f'<{kind} src="{src}" controls></{kind}>')
        else:
            items.append(f'<a href="{src}">{html.escape(part.name or part.content_type)}</a>')
    body = "\n".join(f"<p>{item}</p>" for item in items)
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        "<title>MMS</title><style>body{margin:0;padding:8px;font-family:sans-serif}"
        "img,video{max-width:100%;height:auto}audio{width:100%}</style></head>"
        f"<body>{body}</body></html>"
    )


class SmsRoutes:
    def __init__(
        self,
        store: Store,
        media_store: MediaStorage,
        intake: DlrIntake,
        limiter: MissLimiter,
        metrics: SmsMetrics,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.media_store = media_store
        self.intake = intake
        self.limiter = limiter
        self.metrics = metrics
        self.clock = clock

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/sms/dlr", self.dlr)
        app.router.add_get("/m/{code}", self.short_link)
        app.router.add_get("/m/{code}/{n:[0-9]{1,2}}", self.short_link)

    async def dlr(self, request: web.Request) -> web.Response:
        state = await self.intake.handle(dict(request.query), request.remote)
        # Kannel only looks at the status; the body helps whoever reads its logs.
        return web.Response(text=f"OK {state}\n")

    async def short_link(self, request: web.Request) -> web.Response:
        client = request.remote or "unknown"
        if self.limiter.blocked(client):
            self.metrics.short_links_total.labels(result="rate_limited").inc()
            raise RateLimited("too many unknown links from this address", retry_after=60)
        code = request.match_info["code"]
        link = await self.store.resolve_short_link(code, self.clock())
        media = [p for p in link.parts if has_media((p,))] if link else []
        index = request.match_info.get("n")
        if not media or (index is not None and int(index) >= len(media)):
            self.limiter.miss(client)
            self.metrics.short_links_total.labels(result="not_found").inc()
            raise NotFoundError("this link is unknown or has expired", code="link_not_found")
        self.metrics.short_links_total.labels(result="served").inc()
        if index is None and len(media) > 1:
            return web.Response(
                text=media_page(code, media),
                content_type="text/html",
                headers={"Content-Security-Policy": _PAGE_CSP, "Cache-Control": "private"},
            )
        part = media[int(index or 0)]
        data = await self.media_store.get(part.sha256)
        return web.Response(
            body=data,
            headers={"Content-Type": servable_type(part.content_type), **_MEDIA_HEADERS},
        )
