"""A request's content made to fit every route it goes to, and stored.

Media given by URL is fetched; every part is sniffed and adapted to the smallest
``max_message_bytes`` of the routes involved (memoised: a campaign repeats the same
media). What cannot fit, or goes over a route that takes no MMS, falls back to a link
to our own public URL (or to an SMS, DESIGN.md §13), or is refused. The parts are stored
before any message row refers to them.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import aiohttp

from gateway.errors import PayloadTooLarge, UnsupportedMedia, ValidationError
from gateway.media import AdaptResult, MediaPart, MediaTooLargeError, adapt_parts
from gateway.media import MediaError as PipelineMediaError
from gateway.media.fetch import FetchPolicy, fetch_media
from gateway.media.offload import run_sized
from gateway.media.store import MediaStorage
from gateway.outbound.request import MediaInput, SubmitRequest
from gateway.store import PartRef
from protocol.limits import RECIPIENT_ENVELOPE_BYTES, SUBMIT_ENVELOPE_BYTES

#: Distinct (media, route limits) adaptations remembered; each holds the adapted bytes.
ADAPT_CACHE_ENTRIES = 32

#: Bytes the SOAP envelope and MIME framing add around the content, before recipients,
#: and what each more recipient adds (protocol's figures; the config's floor uses them too).
ENVELOPE_OVERHEAD = SUBMIT_ENVELOPE_BYTES
RECIPIENT_OVERHEAD = RECIPIENT_ENVELOPE_BYTES
#: "Any size": the budget of media that goes by link rather than inside an MM7 body.
NO_BUDGET = 1 << 40
#: The largest image a link fallback serves: about a phone screen (1920 x 1080) and 1 MiB.
LINK_RENDITION_PIXELS = 1920 * 1080
LINK_RENDITION_BYTES = 1 << 20


def envelope_overhead(recipients_per_submit: int, subject: str | None) -> int:
    """Budget kept for the envelope of a SubmitReq (XML escaping may double a subject)."""
    subject_bytes = 2 * len(subject.encode()) if subject else 0
    return (
        ENVELOPE_OVERHEAD + RECIPIENT_OVERHEAD * max(0, recipients_per_submit - 1) + subject_bytes
    )


def _clean_for_link(media: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Media as a link serves it: sniffed (anything we would not carry is refused, as on
    the MMS path), EXIF orientation applied and metadata (GPS...) stripped, and each image
    a handset-sized rendition (``LINK_RENDITION_PIXELS``, ``LINK_RENDITION_BYTES``): the
    link opens on a phone, often over a metered connection. What cannot shrink that far
    (audio, video, an animation) is linked cleaned at full size."""
    out = []
    for i, (ct, data) in enumerate(media):
        part = MediaPart(content_type=ct, data=data, content_id=f"media{i}", name=f"media[{i}]")
        try:
            result = adapt_parts(
                [part],
                budget_bytes=LINK_RENDITION_BYTES,
                overhead_bytes=0,
                max_image_pixels=LINK_RENDITION_PIXELS,
                allow_first_frame=False,
            )
            if not result.fits:
                result = adapt_parts([part], budget_bytes=NO_BUDGET)
        except MediaTooLargeError as exc:
            raise PayloadTooLarge(str(exc), field=exc.part, code="media_too_large") from None
        except PipelineMediaError as exc:
            raise UnsupportedMedia(str(exc), field=exc.part, code=exc.code) from None
        out += [(p.content_type, p.data) for p in result.parts]
    return out


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class RouteLimits:
    max_message_bytes: int
    max_recipients_per_submit: int
    default_validity_seconds: float
    transfer_encoding: Literal["binary", "base64"] = "binary"
    mms: bool = True
    media_policy: Literal["adapt", "link", "reject"] = "adapt"
    max_image_pixels: int | None = None
    allowed_types: frozenset[str] | None = None
    sender: str | None = None
    allow_first_frame: bool = True
    #: ``[[mmsc]] fallback`` and ``fallback_on`` (DESIGN.md §13).
    fallback: Literal["none", "link", "sms"] = "link"
    fallback_on: frozenset[str] = frozenset()

    @property
    def sms_only(self) -> bool:
        """Takes no MMS and falls back to SMS for that: nothing goes to the MMSC."""
        return not self.mms and self.fallback == "sms" and "no_mms" in self.fallback_on


@dataclass(frozen=True, slots=True)
class Content:
    """What will be sent: content parts (text, SMIL, media) or text only."""

    parts: list[MediaPart]
    text: str | None
    original: int
    adapted: int
    fallback: str | None
    #: sha256 of each of ``parts`` when already known (memoised adaptation), else empty.
    digests: tuple[str, ...] = ()
    #: Every recipient gets an SMS instead (its routes take no MMS and fall back to SMS).
    sms_only: bool = False


class ContentFitter:
    """Builds the :class:`Content` of a request for its routes (``limits``: each route's)."""

    def __init__(
        self,
        *,
        media_store: MediaStorage,
        limits: dict[str, RouteLimits],
        fetch_policy: FetchPolicy,
        http: aiohttp.ClientSession | None = None,
        on_media_action: Callable[[str], None] = lambda _action: None,
        link_for: Callable[[str], str] | None = None,
    ) -> None:
        self.media_store = media_store
        self.limits = limits
        self.fetch_policy = fetch_policy
        #: Fetches media URLs (``None``: media URLs are refused); set once the app runs.
        self.http = http
        self.on_media_action = on_media_action
        #: sha256 of stored media -> signed public URL (set once callbacks have a key).
        self.link_for = link_for
        self._adapt_cache: OrderedDict[object, tuple[AdaptResult, tuple[str, ...]]] = OrderedDict()

    async def build(
        self, request: SubmitRequest, routes: tuple[str, ...], *, text_only: bool = False
    ) -> tuple[Content, tuple[PartRef, ...]]:
        """Resolve, sniff and adapt the request's media for ``routes``, and store the parts
        (durably: before any message row refers to them)."""
        media = [await self._resolve_media(item) for item in request.media]
        content = await self._prepare_content(request, routes, media, text_only=text_only)
        parts: list[PartRef] = []
        for index, part in enumerate(content.parts):
            known = content.digests[index] if content.digests else None
            digest = await self.media_store.put(part.data, digest=known)
            parts.append(
                PartRef(
                    content_type=part.content_type,
                    sha256=digest,
                    size=len(part.data),
                    content_id=part.content_id or f"part{len(parts)}",
                    name=part.name,
                )
            )
        return content, tuple(parts)

    async def _resolve_media(self, item: MediaInput) -> tuple[str, bytes]:
        field = f"media[{item.index}]"
        if item.url is not None:
            if self.http is None:
                raise ValidationError("media URLs are not enabled", field=field)
            declared, data = await fetch_media(self.http, item.url, self.fetch_policy, field)
        else:
            declared, data = item.content_type, item.data or b""
        if not data:
            raise ValidationError(f"{field} is empty", field=field, code="empty_media")
        # The media pipeline sniffs the real type; the declared one is only a hint.
        return declared or "application/octet-stream", data

    async def _prepare_content(
        self,
        request: SubmitRequest,
        routes: tuple[str, ...],
        media: list[tuple[str, bytes]],
        *,
        text_only: bool = False,
    ) -> Content:
        """Sniff, adapt or fall back to a link, so the content fits every route involved."""
        first = self.limits[routes[0]]
        budget = min(self.limits[r].max_message_bytes for r in set(routes))
        parts: list[MediaPart] = []
        if request.text and media:
            parts.append(
                MediaPart(
                    content_type="text/plain; charset=utf-8",
                    data=request.text.encode(),
                    content_id="text",
                )
            )
        parts += [
            MediaPart(content_type=ct, data=data, content_id=f"media{i}", name=f"media[{i}]")
            for i, (ct, data) in enumerate(media)
        ]
        original = (
            ENVELOPE_OVERHEAD + len((request.text or "").encode()) + sum(len(d) for _, d in media)
        )
        if all(self.limits[r].sms_only for r in set(routes)):
            # Kept as parts (cleaned like a link's media) for the SMS's short link.
            cleaned = await asyncio.to_thread(_clean_for_link, media) if media else []
            return Content(
                parts=[
                    MediaPart(content_type=ct, data=data, content_id=f"media{i}")
                    for i, (ct, data) in enumerate(cleaned)
                ],
                text=request.text, original=original, adapted=original, fallback="sms",
                sms_only=True,
            )  # fmt: skip
        if not media:
            return Content(
                parts=[], text=request.text, original=original, adapted=original, fallback=None
            )
        if any(not self.limits[r].mms and self.limits[r].fallback == "none" for r in routes):
            raise UnsupportedMedia(
                "the route takes no MMS and has no fallback for media",
                field="media",
                code="media_not_carried",
            )
        if text_only:  # a pool without an MMS sender
            return await self._link_fallback(request, media, original, "pool has no MMS sender")
        if not all(self.limits[r].mms for r in set(routes)):
            # Not carried as MMS, but still handed out by our own public URL: only media we
            # would have carried, sniffed from its bytes like any other part.
            try:
                return await self._link_fallback(
                    request, media, original, "route does not take MMS"
                )
            except (PayloadTooLarge, UnsupportedMedia):
                self.on_media_action("rejected")
                raise
        overhead = envelope_overhead(
            max(
                min(self.limits[r].max_recipients_per_submit, routes.count(r)) for r in set(routes)
            ),
            request.subject,
        )
        try:
            result, digests = await self._adapt(parts, budget, first, overhead)
        except MediaTooLargeError as exc:
            self.on_media_action("rejected")
            raise PayloadTooLarge(str(exc), field=exc.part, code="media_too_large") from None
        except PipelineMediaError as exc:
            self.on_media_action("rejected")
            raise UnsupportedMedia(str(exc), field=exc.part, code=exc.code) from None
        if result.fits:
            # One count per media part (not the text or the generated SMIL).
            for action, part in zip(result.actions, result.parts, strict=True):
                if not part.content_type.startswith(("text/plain", "application/smil")):
                    self.on_media_action(action)
            return Content(
                parts=list(result.parts),
                text=request.text,
                original=original,
                adapted=ENVELOPE_OVERHEAD + sum(len(p.data) for p in result.parts),
                fallback=None,
                digests=digests,
            )
        if first.media_policy == "reject":
            self.on_media_action("rejected")
            raise PayloadTooLarge(
                f"the media cannot fit the {budget}-byte limit of route {routes[0]}",
                field="media",
                code="media_too_large",
            )
        return await self._link_fallback(request, media, original, "media cannot fit")

    async def _adapt(
        self, parts: list[MediaPart], budget: int, limits: RouteLimits, overhead: int
    ) -> tuple[AdaptResult, tuple[str, ...]]:
        """``adapt_parts`` in a worker thread, memoised: a campaign repeats the same media,
        and adaptation is deterministic, so the same input and limits give the same output.

        Returns the result and the sha256 of each output part (hashed once, not per message).
        """
        digests = await run_sized(
            sum(len(p.data) for p in parts),
            lambda: tuple((p.content_type, p.content_id, _sha256(p.data)) for p in parts),
        )
        key = (
            digests,
            budget,
            overhead,
            limits.max_image_pixels,
            limits.allowed_types,
            limits.media_policy,
            limits.transfer_encoding,
            limits.allow_first_frame,
        )
        cached = self._adapt_cache.get(key)
        if cached is not None:
            self._adapt_cache.move_to_end(key)
            return cached

        def run() -> tuple[AdaptResult, tuple[str, ...]]:
            result = adapt_parts(
                parts,
                budget_bytes=budget,
                overhead_bytes=overhead,
                max_image_pixels=limits.max_image_pixels,
                allowed_types=limits.allowed_types,
                policy=limits.media_policy,
                transfer_encoding=limits.transfer_encoding,
                allow_first_frame=limits.allow_first_frame,
                add_smil=True,
            )
            return result, tuple(hashlib.sha256(p.data).hexdigest() for p in result.parts)

        entry = await asyncio.to_thread(run)
        self._adapt_cache[key] = entry
        if len(self._adapt_cache) > ADAPT_CACHE_ENTRIES:
            self._adapt_cache.popitem(last=False)
        return entry

    async def _link_fallback(
        self, request: SubmitRequest, media: list[tuple[str, bytes]], original: int, why: str
    ) -> Content:
        if self.link_for is None:
            raise PayloadTooLarge(f"{why} and link fallback is not available", field="media")
        links = []
        for _, data in await asyncio.to_thread(_clean_for_link, media):
            digest = await self.media_store.put(data)
            links.append(self.link_for(digest))
        self.on_media_action("link_fallback")
        text = "\n".join([*(t for t in [request.text] if t), *links])
        return Content(
            parts=[], text=text, original=original, adapted=len(text.encode()), fallback="link"
        )
