"""REST request bodies under ``gateway.max_body_bytes``, refused before they are read.

A declared Content-Length over the limit is answered 413 before the handler runs; a body
without one (chunked) is read in chunks and refused as soon as it passes the limit.
Chunks are kept in a list and joined once: growing one buffer towards the limit and then
dropping it leaves the allocator holding that memory for every refused request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware

from gateway.api.middleware import error_response
from gateway.errors import PayloadTooLarge, ValidationError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body exceeds {limit} bytes")


def body_limit_middleware(limit: int) -> Middleware:
    """Answer 413 from the Content-Length header alone; the body is never read."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > limit:
            response = error_response(too_large(limit))
            # No keep-alive: aiohttp discards what the client still sends, then closes.
            response.force_close()
            return response
        return await handler(request)

    return middleware


async def read_capped(request: web.Request, limit: int) -> bytes:
    """The whole body.

    Raises:
        PayloadTooLarge: as soon as more than ``limit`` bytes have arrived.
    """
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.content.iter_any():
        total += len(chunk)
        if total > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_part(part: BodyPartReader, room: int, limit: int) -> bytes:
    """One form part, transfer- and content-decoded, of at most ``room`` bytes either way.

    Raises:
        PayloadTooLarge: the part (raw or decoded: a compressed part may expand) is larger.
        ValueError: a truncated or malformed part (aiohttp's signal).
    """
    chunks: list[bytes] = []
    total = 0
    while chunk := await part.read_chunk():
        total += len(chunk)
        if total > room:
            raise too_large(limit)
        chunks.append(chunk)
    decoded: list[bytes] = []
    total = 0
    async for piece in part.decode_iter(b"".join(chunks)):
        total += len(piece)
        if total > room:
            raise too_large(limit)
        decoded.append(bytes(piece))
    return b"".join(decoded)


async def form_parts(
    request: web.Request, limit: int
) -> AsyncIterator[tuple[str | None, str | None, bytes]]:
    """``(name, content type, data)`` of each part of a multipart/form-data body, all
    parts together at most ``limit`` bytes.

    Raises:
        ValidationError: ``malformed_form`` for a nested, truncated or malformed body.
        PayloadTooLarge: the parts together pass the limit.
    """
    reader = await request.multipart()
    total = 0
    while True:
        try:
            part = await reader.next()
            if part is None:
                return
            if not isinstance(part, BodyPartReader):
                raise ValidationError(
                    "nested multipart is not supported here", code="malformed_form"
                )
            data = await read_part(part, limit - total, limit)
        except (ValueError, HttpProcessingError) as exc:
            # aiohttp's multipart reader signals a truncated or unterminated body with
            # ValueError ("Reading after EOF", missing boundary, bad part headers), and a
            # preamble line past its line limit with LineTooLong.
            raise ValidationError(
                f"malformed multipart body: {exc}", code="malformed_form"
            ) from None
        total += len(data)
        yield part.name, part.headers.get("Content-Type"), data
