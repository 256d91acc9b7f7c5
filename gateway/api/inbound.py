# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""REST routes for what came back: inbound messages, signed media, webhook dead letters.

``/v1/inbound`` and ``/v1/webhooks/dead-letters`` sit behind the Bearer middleware;
``/v1/media/{id}`` does not (the API's auth middleware lets ``/v1/media/`` through) and
is authorised by its ``exp``/``sig`` query instead, so links can be handed to browsers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from gateway.api.middleware import API_KEY_NAME
from gateway.errors import ForbiddenError, NotFoundError, ValidationError
from gateway.media import MediaError, sniff

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.media.links import MediaLinks
    from gateway.media.store import MediaStorage
    from gateway.store import Store

_MAX_PAGE = 100


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_PAGE:
        raise ValidationError(f"limit must be 1-{_MAX_PAGE}", field="limit")
    return int(raw)


#: Media types served as declared; anything else (text/html, image/svg+xml, XML, scripts)
#: goes out as application/octet-stream so a browser downloads rather than renders it.
_SERVABLE_PREFIXES: Final = ("image/", "audio/", "video/")
_SERVABLE_TYPES: Final = frozenset(
    {"text/plain", "text/vcard", "text/x-vcard", "text/directory", "application/smil"}
)
_UNSAFE_TYPES: Final = frozenset({"image/svg+xml"})


def servable_type(content_type: str | None) -> str:
    """The Content-Type to serve stored media with (see ``_SERVABLE_TYPES``)."""
    if not content_type:
        return "application/octet-stream"
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in _UNSAFE_TYPES:
        return "application/octet-stream"
    if media_type.startswith(_SERVABLE_PREFIXES) or media_type in _SERVABLE_TYPES:
        return content_type
    return "application/octet-stream"


def inbound_resource(links: MediaLinks, stored: dict[str, Any], now: float) -> dict[str, Any]:
    """The REST shape of a stored inbound message, with freshly signed media URLs."""
    media = [
        {
            "id": p["sha256"],
            "content_type": p["content_type"],
            "size": p["size"],
            "content_id": p["content_id"],
            "charset": p["charset"],
            "text": p["text"],
            "url": links.url(p["sha256"], now),
        }
        for p in stored["parts"]
    ]
    return {k: v for k, v in stored.items() if k not in ("parts", "api_key")} | {"media": media}


class InboundRoutes:
    def __init__(
        self,
        store: Store,
        media_store: MediaStorage,
        links: MediaLinks,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.media_store = media_store
        self.links = links
        self.clock = clock

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/inbound", self.list_inbound)
        app.router.add_get("/v1/inbound/{id}", self.get_inbound)
        app.router.add_get("/v1/media/{id}", self.get_media)
        app.router.add_get("/v1/webhooks/dead-letters", self.dead_letters)

    async def list_inbound(self, request: web.Request) -> web.Response:
        api_key = request[API_KEY_NAME]
        limit = _limit(request)
        before = request.query.get("before")
        rows = await self.store.list_inbound(api_key, limit, before)
        now = self.clock()
        data = [inbound_resource(self.links, row, now) for row in rows]
        next_cursor = data[-1]["id"] if len(data) == limit else None
        return web.json_response({"data": data, "next_before": next_cursor})

    async def get_inbound(self, request: web.Request) -> web.Response:
        inbound_id = request.match_info["id"]
        row = await self.store.get_inbound(inbound_id)
        if row is None or row["api_key"] not in (None, request[API_KEY_NAME]):
            raise NotFoundError(f"no inbound message {inbound_id}")
        return web.json_response(inbound_resource(self.links, row, self.clock()))

    async def get_media(self, request: web.Request) -> web.Response:
        media_id = request.match_info["id"]
        expires = request.query.get("exp", "")
        signature = request.query.get("sig", "")
        if not self.links.verify(media_id, expires, signature):
            raise ForbiddenError(
                "the media link is invalid or has expired", code="invalid_media_signature"
            )
        content_type = await self.store.media_type_of(media_id)
        data = await self.media_store.get(media_id)  # NotFoundError for bad ids/missing files
        if content_type is None:
            # Outbound media behind a link fallback: not an inbound part, so sniff it.
            try:
                content_type = sniff(data).header_value
            except MediaError:
                content_type = None
        return web.Response(
            body=data,
            headers={
                "Content-Type": servable_type(content_type),
                "Cache-Control": "private, max-age=300",
                "X-Content-Type-Options": "nosniff",
                # Carrier-declared types are not trusted: nothing served from the API's own
                # origin may run script, whatever a browser makes of it.
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        )

    async def dead_letters(self, request: web.Request) -> web.Response:
        api_key = request[API_KEY_NAME]
        limit = _limit(request)
        rows = await self.store.dead_letters(api_key, limit)
        return web.json_response({"data": rows})
