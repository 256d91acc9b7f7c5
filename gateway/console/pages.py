"""Console pages (GET): overview, message search and timeline, the SubmitReq download,
inbound MMS with thumbnails and webhook dead letters.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web
from PIL import Image, UnidentifiedImageError

from gateway.console.charts import svg_chart
from gateway.console.context import DEPS, error_page, render, session_of
from gateway.ops.log_setup import mask_number
from gateway.store import Batch
from gateway.store.history import MessageHistory, MessageQuery
from gateway.store.records import RECIPIENT_STATES, iso_time
from protocol import ProtocolError, decode

log = structlog.get_logger("gateway.console")

THUMB_SIZE = 120
_SHA256_HEX = frozenset("0123456789abcdef")


async def overview(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    outcomes = _route_counters(deps.sampler.registry)
    charts = [svg_chart(series) for series in deps.sampler.series()]
    return render(
        request,
        "overview.html",
        routes=deps.route_status(),
        outcomes=outcomes,
        charts=charts,
        dead=(await deps.store.outbox_counts()).get("dead", 0),
    )


def _route_counters(registry: Any) -> dict[str, dict[str, int]]:
    """Submission outcomes and delivery reports per route, from the gateway's counters."""
    found: dict[str, dict[str, int]] = {}
    for metric in registry.collect():
        for sample in metric.samples:
            route = sample.labels.get("mmsc")
            if route is None or not sample.value:
                continue
            if sample.name == "mm7gw_submission_outcomes_total":
                key = sample.labels["outcome"]
            elif sample.name == "mm7gw_delivery_reports_total":
                key = "report " + sample.labels["mm_status"]
            else:
                continue
            found.setdefault(route, {})[key] = int(sample.value)
    return found


def _time_arg(value: str | None) -> float | None:
    """``datetime-local`` form input (UTC) to a Unix time; blank: no bound."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise web.HTTPBadRequest(text=f"not a date and time: {value!r}") from None


async def messages(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    args = request.query
    status = args.get("status") or None
    if status is not None and status not in RECIPIENT_STATES:
        return error_page(request, 400, "invalid_status", f"Unknown status {status!r}.")
    try:
        since, until = _time_arg(args.get("since")), _time_arg(args.get("until"))
    except web.HTTPBadRequest as exc:
        return error_page(request, 400, "invalid_time", exc.text or "bad time")
    query = MessageQuery(text=args.get("q") or None, status=status, since=since, until=until)
    searched = any(v for v in (query.text, status, since, until))
    found = await deps.store.search_messages(query) if searched else []
    return render(
        request,
        "messages.html",
        args=dict(args),
        states=sorted(RECIPIENT_STATES),
        results=[
            {
                "id": m.id,
                "status": m.status,
                "route": m.route,
                "client_ref": m.client_ref,
                "to": ", ".join(_mask(deps.mask_numbers, r.address) for r in m.recipients),
                "created": iso_time(m.created_at),
            }
            for m in found
        ],
        searched=searched,
    )


def _mask(enabled: bool, number: str | None) -> str:
    if number is None:
        return ""
    return mask_number(number) if enabled else number


@dataclass(frozen=True, slots=True)
class Entry:
    at: float
    kind: str
    title: str
    detail: str


def timeline_entries(history: MessageHistory, show: Any) -> list[Entry]:
    """Everything that happened to a message, in time order; ``show`` masks numbers."""
    m = history.message
    entries = [Entry(m.created_at, "accepted", "Accepted", f"route {m.route}, {m.status} now")]
    if (m.parts or m.fallback) and m.original_bytes is not None and m.adapted_bytes is not None:
        entries.append(
            Entry(m.created_at, "media", "Media", f"{m.original_bytes} bytes before adaptation, "
                  f"{m.adapted_bytes} after" + (f"; fallback: {m.fallback}" if m.fallback else ""))
        )  # fmt: skip
    tx = {b.id: b.transaction_id for b in history.batches}
    for a in history.attempts:
        answer = (
            f"status {a.status_code} {a.status_text or ''}".strip()
            if a.status_code is not None
            else f"no MM7 answer: {a.error}"
        )
        entries.append(
            Entry(a.at, "attempt", f"SubmitReq attempt {a.attempt} ({tx.get(a.batch_id, '?')})",
                  f"{answer} -> {a.outcome}")
        )  # fmt: skip
    entries.extend(
        Entry(r.received_at, "report", f"{r.kind.title()} report from {r.mmsc}",
              f"{show(r.recipient)}: {r.mm_status or '?'} -> {r.mapped_state or 'no change'}"
              + (f" ({r.status_text})" if r.status_text else ""))
        for r in history.reports
    )  # fmt: skip
    entries.extend(
        Entry(b.updated_at, "cancel", "Canceled", b.transaction_id)
        for b in history.batches
        if b.state == "canceled"
    )
    for w in history.webhooks:
        result = {"delivered": "delivered", "dead": "dead-lettered"}.get(w.state, w.state)
        entries.append(
            Entry(w.created_at, "webhook", f"Webhook {w.event_type}",
                  f"{result} after {w.attempts} attempt(s)"
                  + (f"; last error: {w.last_error}" if w.last_error else ""))
        )  # fmt: skip
    return sorted(entries, key=lambda e: e.at)


async def timeline(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    message_id = request.match_info["id"]
    history = await deps.store.message_history(message_id)
    if history is None:
        return error_page(request, 404, "not_found", f"No message {message_id}.")
    reveal = request.query.get("reveal") == "1"
    if reveal:
        session = session_of(request)
        # Unmasked numbers are personal data: who looked, and at what, is on record.
        log.warning(
            "console revealed numbers",
            user=session.user if session else None,
            message_id=message_id,
        )
    masked = deps.mask_numbers and not reveal

    def show(number: str | None) -> str:
        return _mask(masked, number)

    m = history.message
    return render(
        request,
        "timeline.html",
        m=m,
        created=iso_time(m.created_at),
        recipients=[(show(r.address), r.status, r.error) for r in m.recipients],
        sender=m.sender or "",
        batches=history.batches,
        entries=[
            {"at": iso_time(e.at), "kind": e.kind, "title": e.title, "detail": e.detail}
            for e in timeline_entries(history, show)
        ],
        masked=masked,
        can_reveal=deps.mask_numbers and not reveal,
    )


async def submit_download(request: web.Request) -> web.Response:
    """The SubmitReq of one batch, re-encoded by the worker's own code path, as an HTTP
    capture (``mm7-gateway inspect`` reads it) or, with ``?view=summary``, decoded."""
    deps = request.app[DEPS]
    message_id = request.match_info["id"]
    history = await deps.store.message_history(message_id)
    row = next(
        (
            b
            for b in (history.batches if history else ())
            if str(b.id) == request.match_info["batch"]
        ),
        None,
    )
    if history is None or row is None:
        return error_page(request, 404, "not_found", "No such message or submission.")
    batch = Batch(
        id=row.id, message_id=message_id, route=row.route, attempts=row.attempts,
        recipients=row.recipients, expires_at=row.expires_at, transaction_id=row.transaction_id,
    )  # fmt: skip
    try:
        content_type, body = await deps.reencode(history.message, batch)
    except (KeyError, OSError) as exc:
        return error_page(request, 409, "not_reproducible", f"Cannot rebuild: {exc}")
    if request.query.get("view") == "summary":
        try:
            decoded = decode(body, content_type)
        except ProtocolError as exc:  # our own encoder's output: should never happen
            return error_page(request, 500, "decode_failed", str(exc))
        return render(
            request, "submit.html", m=history.message, batch=row,
            type=type(decoded).__name__, version=decoded.version, size=len(body),
            content_type=content_type,
            attachments=[(a.content_type, a.size) for a in decoded.attachments],
        )  # fmt: skip
    head = f"POST / HTTP/1.1\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return web.Response(
        body=head.encode("latin-1") + body,
        content_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{row.transaction_id}.http"',
            "Cache-Control": "no-store",
        },
    )


async def inbound(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    rows = await deps.store.recent_inbound(50)
    items = [
        {
            "id": r["id"],
            "from": _mask(deps.mask_numbers, r.get("from")),
            "to": _mask(deps.mask_numbers, r.get("to")),
            "mmsc": r.get("mmsc"),
            "subject": r.get("subject"),
            "text": r.get("text"),
            "received": r.get("received_at"),
            "images": [p["sha256"] for p in r.get("parts", ())
                       if str(p.get("content_type", "")).startswith("image/")],
        }
        for r in rows
    ]  # fmt: skip
    return render(request, "inbound.html", items=items)


def _thumbnail(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)
        still = image.convert("RGB")
        still.thumbnail((THUMB_SIZE, THUMB_SIZE))
        out = io.BytesIO()
        still.save(out, "PNG", optimize=True)
        return out.getvalue()


async def thumbnail(request: web.Request) -> web.StreamResponse:
    """A small PNG of an image part, generated once and kept under ``thumbs_dir``."""
    deps = request.app[DEPS]
    digest = request.match_info["sha256"]
    if len(digest) != 64 or not set(digest) <= _SHA256_HEX:
        return error_page(request, 400, "invalid_digest", "Not a sha256 digest.")
    path = deps.thumbs_dir / f"{digest}.png"
    if not path.exists():
        try:
            data = await deps.media(digest)
            png = await asyncio.to_thread(_thumbnail, data)
        except (OSError, UnidentifiedImageError, ValueError):
            return error_page(request, 404, "not_found", "No image with that digest.")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        await asyncio.to_thread(tmp.write_bytes, png)
        tmp.replace(path)
    return web.FileResponse(path, headers={"Content-Type": "image/png"})


async def dead_letters(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    rows = await deps.store.dead_letters(None, 100)
    return render(request, "dead_letters.html", rows=rows, replayed=request.query.get("replayed"))
