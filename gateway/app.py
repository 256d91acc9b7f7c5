"""The one factory: builds every component of the gateway from a frozen config.

``Gateway`` owns the store, the media store, one MMSC client and worker per route, the
submission service and three aiohttp applications (REST API, MM7 callbacks, ops). Tests
and the daemon both use it; nothing here reads the environment or module globals.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from gateway import __version__
from gateway.access_log import AccessLogger, access_logger_for, enable_access_log
from gateway.api.middleware import auth_middleware, errors_middleware, metrics_middleware
from gateway.api.routes import (
    CANCELLER,
    MAX_BODY,
    MAX_MEDIA,
    MAX_RECIPIENTS,
    REPLACER,
    SUBMISSIONS,
    add_routes,
)
from gateway.api.schemas import ReplaceRequest, SubmitRequest
from gateway.callbacks import build_callbacks
from gateway.callbacks.signing import media_url
from gateway.config import GatewayConfig, MmscConfig
from gateway.dispatcher import MediaCache, RecentMessages, RouteSettings, RouteWorker
from gateway.errors import MmscUnavailable, StateConflict
from gateway.media_fetch import FetchPolicy
from gateway.media_store import MediaStore
from gateway.metrics import Metrics
from gateway.mmsc_client import ClientSettings, MmscClient
from gateway.ops import add_ops_routes
from gateway.read_deadline import read_deadline_middleware
from gateway.retry import RetryPolicy
from gateway.routing import Router, RouteRule
from gateway.store import MessageRecord, ReplacePlan, SqliteStore
from gateway.submission import QueueGauge, RouteLimits, SubmissionService
from protocol import Response, is_success

log = structlog.get_logger("gateway.app")


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if getter is not None else str(value)


def route_settings(mmsc: MmscConfig) -> RouteSettings:
    retry = mmsc.retry
    return RouteSettings(
        name=mmsc.name,
        vasp_id=mmsc.vasp_id,
        vas_id=mmsc.vas_id,
        sender=mmsc.sender,
        tps=mmsc.tps,
        burst=mmsc.burst if mmsc.burst is not None else max(1.0, mmsc.tps),
        max_in_flight=mmsc.max_in_flight,
        per_sender_tps=mmsc.per_sender_tps,
        retry=RetryPolicy(
            max_attempts=retry.max_attempts,
            initial_backoff=retry.initial_backoff_seconds,
            max_backoff=retry.max_backoff_seconds,
            multiplier=retry.multiplier,
            jitter=retry.jitter,
        ),
        status_overrides={int(code): cls for code, cls in mmsc.status_overrides.items()},
        slow_down_factor=retry.slow_down_factor,
        slow_down_recovery_seconds=retry.slow_down_recovery_seconds,
    )


def client_settings(mmsc: MmscConfig) -> ClientSettings:
    return ClientSettings(
        url=str(mmsc.url),
        version=mmsc.version,
        username=mmsc.username,
        password=_secret(mmsc.password),
        timeout_seconds=mmsc.timeout_seconds,
        connect_timeout_seconds=mmsc.connect_timeout_seconds,
        max_connections=max(1, mmsc.max_in_flight),
        transfer_encoding=mmsc.transfer_encoding,
        tls_ca_file=str(mmsc.tls_ca_file) if mmsc.tls_ca_file else None,
        tls_cert_file=str(mmsc.tls_cert_file) if mmsc.tls_cert_file else None,
        tls_key_file=str(mmsc.tls_key_file) if mmsc.tls_key_file else None,
        tls_verify=mmsc.tls_verify,
    )


@dataclass
class _Answers:
    """How an MMSC answered one request per submitted batch (see Gateway._ask_mmsc)."""

    done: list[tuple[int, str]] = field(default_factory=list)  # (batch_id, route)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (batch_id, status)
    unreachable: int = 0

    def raise_for(self, operation: str, when_unanswered: str) -> None:
        """409 when the MMSC refused any, 502 when it did not answer some."""
        if self.refused:
            raise StateConflict(
                f"the MMSC refused to {operation}: {'; '.join(t for _, t in self.refused)}",
                code=f"{operation}_refused",
            )
        if self.unreachable:
            raise MmscUnavailable(
                f"the MMSC did not answer the {operation.capitalize()}Req; {when_unanswered}"
            )


@dataclass
class Listeners:
    api: tuple[str, int] | None = None
    mm7: tuple[str, int] | None = None
    ops: tuple[str, int] | None = None
    runners: list[web.AppRunner] = field(default_factory=list)


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()
        self.registry = registry or CollectorRegistry()
        names = [m.name for m in config.mmsc]
        self.metrics = Metrics(self.registry, names)
        data_dir = Path(config.gateway.data_dir)
        self.store = SqliteStore(data_dir / "gateway.sqlite3")
        self.media_store = MediaStore(data_dir / "media")
        self.media_cache = MediaCache(self.media_store)
        self.recent = RecentMessages()
        self.queue = QueueGauge()
        self._accepted_counters: dict[str, Any] = {}
        self.router = Router(
            [RouteRule(m.name, tuple(m.prefixes), m.route_default) for m in config.mmsc]
        )
        self.clients = {m.name: MmscClient(client_settings(m)) for m in config.mmsc}
        self.workers = {
            m.name: RouteWorker(
                route_settings(m),
                self.store,
                self.media_cache,
                self.clients[m.name],
                self.metrics,
                on_finished=self._batch_finished,
                clock=clock,
                rng=self.rng,
                recent=self.recent,
            )
            for m in config.mmsc
        }
        self.worker_tasks: dict[str, asyncio.Task[None]] = {}
        self._queue_gauges = {
            name: self.metrics.queue_depth.labels(mmsc=name) for name in self.workers
        }
        self._resume_task: asyncio.Task[None] | None = None
        self.http: aiohttp.ClientSession | None = None
        self.listeners = Listeners()
        self.started_at = clock()
        self.submissions = SubmissionService(
            store=self.store,
            media_store=self.media_store,
            router=self.router,
            limits={
                m.name: RouteLimits(
                    max_message_bytes=m.max_message_bytes,
                    max_recipients_per_submit=m.max_recipients_per_submit,
                    default_validity_seconds=m.retry.default_validity_seconds,
                    transfer_encoding=m.transfer_encoding,
                    mms=m.mms,
                    media_policy=m.media_policy,
                    max_image_pixels=m.max_image_pixels,
                    allowed_types=frozenset(m.allowed_types) if m.allowed_types else None,
                    sender=m.sender,
                    allow_first_frame=m.allow_first_frame,
                )
                for m in config.mmsc
            },
            queue=self.queue,
            max_queue_depth=config.gateway.max_queue_depth,
            wake=self._wake,
            on_accepted=self._accepted,
            fetch_policy=FetchPolicy(
                timeout_seconds=config.gateway.media_fetch_timeout_seconds,
                max_bytes=config.gateway.media_fetch_max_bytes,
                allow_private=config.gateway.allow_private_media_urls,
            ),
            clock=clock,
            on_media_action=self._media_action,
            link_for=self._media_link,
            allow_private_callbacks=config.webhooks.allow_private_urls,
        )
        self.api_app = self._build_api_app()
        self.mm7_app = web.Application(
            middlewares=[read_deadline_middleware(config.listen.read_timeout_seconds)],
            client_max_size=16 * 1024 * 1024,
        )
        enable_access_log(self.mm7_app, "mm7")
        self.ops_app = web.Application()
        add_ops_routes(self.ops_app, self)
        # Callbacks (issue 5) add their routes to mm7_app/api_app and run the webhook outbox.
        self.callbacks = build_callbacks(self)

    # -- wiring ----------------------------------------------------------------------------
    def _build_api_app(self) -> web.Application:
        keys = {_secret(k.key) or "": k.name for k in self.config.api_keys}
        app = web.Application(
            middlewares=[
                metrics_middleware(self.metrics),
                errors_middleware,
                auth_middleware(keys, public_prefixes=("/v1/media/",)),  # type: ignore[list-item]
                read_deadline_middleware(self.config.listen.read_timeout_seconds),
            ],
            client_max_size=self.config.gateway.max_body_bytes,
        )
        app[SUBMISSIONS] = self.submissions
        app[CANCELLER] = self.cancel
        app[REPLACER] = self.replace
        app[MAX_RECIPIENTS] = self.config.gateway.max_recipients_per_message
        app[MAX_MEDIA] = self.config.gateway.max_media_parts
        app[MAX_BODY] = self.config.gateway.max_body_bytes
        add_routes(app)
        enable_access_log(app, "api")
        return app

    def _media_action(self, action: str) -> None:
        # Per-part pipeline actions onto the metric's labels; "too_large" parts only occur
        # in a result that does not fit, which is counted once as link_fallback/rejected.
        label = {"first_frame": "adapted", "generated": None, "too_large": None}.get(action, action)
        if label is not None:
            self.metrics.media_adaptations_total.labels(result=label).inc()

    def _media_link(self, sha256: str) -> str:
        """A signed, expiring public URL for stored media (link fallback)."""
        expires = int(self.clock() + self.config.gateway.media_url_ttl_seconds)
        return media_url(self.callbacks.base_url(), self.callbacks.key(), sha256, expires)

    def _wake(self, route: str) -> None:
        worker = self.workers.get(route)
        if worker is not None:
            worker.wake()

    def _accepted(self, record: MessageRecord) -> None:
        self.recent.add(record)
        counter = self._accepted_counters.get(record.route)
        if counter is None:
            counter = self.metrics.messages_accepted_total.labels(route=record.route)
            self._accepted_counters[record.route] = counter
        counter.inc()
        self._refresh_queue_gauge()

    def _batch_finished(self, route: str, count: int) -> None:
        self.queue.done(route, count)
        self._refresh_queue_gauge()

    def _refresh_queue_gauge(self) -> None:
        for name, gauge in self._queue_gauges.items():
            gauge.set(self.queue.depth.get(name, 0))

    async def _ask_mmsc(
        self,
        batches: list[tuple[int, str, str]],
        send: Callable[[RouteWorker, int, str], Awaitable[Response | None]],
    ) -> _Answers:
        """Send one request per submitted batch ``(batch_id, route, mm7_message_id)`` and
        sort the answers: success, refusal (with its status) or no answer."""
        answers = _Answers()
        for batch_id, route, mm7_message_id in batches:
            worker = self.workers.get(route)
            if worker is None:
                continue
            response = await send(worker, batch_id, mm7_message_id)
            if response is None:
                answers.unreachable += 1
            elif is_success(response.status_code):
                answers.done.append((batch_id, route))
            else:
                text = f"{response.status_code} {response.status_text or ''}".strip()
                answers.refused.append((batch_id, text))
        return answers

    async def cancel(self, record: MessageRecord) -> MessageRecord:
        """DELETE /v1/messages/{id}: dequeue what is unsent, CancelReq what was submitted."""
        plan = await self.store.cancel_message(record.id, self.clock())
        answers = await self._ask_mmsc(
            plan.submitted,
            lambda worker, batch_id, mm7_id: worker.cancel_submitted(
                mm7_id, f"{record.id}-cancel-{batch_id}"
            ),
        )
        for batch_id, route in answers.done:
            await self.store.mark_batch_canceled(batch_id, self.clock())
            self.metrics.submission_outcomes_total.labels(mmsc=route, outcome="canceled").inc()
        for batch_id, _ in answers.refused:
            await self.store.clear_cancel_request(batch_id, self.clock())
        # Unanswered ones stay flagged: retried when the route's worker next starts.
        log.info(
            "cancel requested",
            message_id=record.id,
            canceled_at_mmsc=len(answers.done),
            refused=len(answers.refused),
            unreachable=answers.unreachable,
            in_flight=plan.in_flight,
        )
        depths = await self.store.queue_depths()
        self.queue.depth = dict(depths)
        self._refresh_queue_gauge()
        answers.raise_for("cancel", "the cancel stays requested and is sent again when the "
                          "route's worker next starts")  # fmt: skip
        updated = await self.store.get_message(record.id)
        return updated or record

    async def replace(self, record: MessageRecord, replacement: ReplaceRequest) -> MessageRecord:
        """PUT /v1/messages/{id}: new content for what is queued; MM7 ReplaceReq for what
        the MMSC accepted and has not delivered yet."""
        # Queued batches are held for the duration (longer than any ReplaceReq can take):
        # a worker must not send the old content while the new one is being put in place.
        hold = max(m.timeout_seconds for m in self.config.mmsc) * max(1, len(self.workers)) + 30
        plan = await self.store.replace_plan(record.id, hold_until=self.clock() + hold)
        try:
            return await self._replace(record, replacement, plan)
        finally:
            await self.store.release_hold(plan.held)
            for route in plan.routes:
                self._wake(route)

    async def _replace(
        self, record: MessageRecord, replacement: ReplaceRequest, plan: ReplacePlan
    ) -> MessageRecord:
        if plan.in_flight:
            raise StateConflict(
                "a SubmitReq of this message is on the wire; try again in a moment",
                code="message_in_flight",
                retry_after=1,
            )
        if not plan.queued and not plan.submitted:
            raise StateConflict(
                f"the message is {record.status}: nothing is left to replace",
                code="message_final",
            )
        request = SubmitRequest(
            to=tuple(r.address for r in record.recipients),
            sender=record.sender,
            subject=replacement.subject,
            text=replacement.text,
            media=replacement.media,
        )
        # Each route counted once per recipient: the envelope budget then assumes the
        # fullest batch possible (conservative; which recipient is on which route does not
        # matter for fitting the content).
        routes = plan.routes * max(1, len(record.recipients))
        content, parts = await self.submissions.build_content(request, routes)
        candidate = dataclasses.replace(
            record,
            subject=replacement.subject,
            text=content.text,
            parts=parts,
            fallback=content.fallback,
        )
        stamp = int(self.clock() * 1000)
        answers = await self._ask_mmsc(
            plan.submitted,
            lambda worker, batch_id, mm7_id: worker.replace_submitted(
                mm7_id, f"{record.id}-replace-{batch_id}-{stamp}", candidate
            ),
        )
        log.info(
            "replace requested",
            message_id=record.id,
            queued=plan.queued,
            replaced_at_mmsc=len(answers.done),
            refused=len(answers.refused),
            unreachable=answers.unreachable,
        )
        answers.raise_for("replace", "nothing was changed")
        updated = await self.store.replace_content(
            record.id,
            subject=replacement.subject,
            text=content.text,
            parts=parts,
            fallback=content.fallback,
            original_bytes=content.original,
            adapted_bytes=content.adapted,
            now=self.clock(),
        )
        self.recent.discard(record.id)  # queued batches must send the new content
        return updated or record

    async def _resume_cancels(self) -> None:
        for worker in self.workers.values():
            await worker.resume_cancels()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self.store.open()
        requeued = await self.store.requeue_in_flight(self.clock())
        if requeued:
            log.warning("requeued submissions left in flight by a previous run", count=requeued)
        self.queue.depth = dict(await self.store.queue_depths())
        self._refresh_queue_gauge()
        self.http = aiohttp.ClientSession()
        self.submissions.http = self.http
        for client in self.clients.values():
            await client.open()
        await self.callbacks.start()
        for name, worker in self.workers.items():
            self.worker_tasks[name] = asyncio.create_task(worker.run(), name=f"route-{name}")
        # Cancels asked for while a submission was in flight, not done before a stop.
        self._resume_task = asyncio.create_task(self._resume_cancels(), name="resume-cancels")
        listen = self.config.listen
        self.listeners.api = await self._serve(self.api_app, listen.api)
        self.listeners.mm7 = await self._serve(self.mm7_app, listen.mm7)
        self.listeners.ops = await self._serve(self.ops_app, listen.ops)
        log.info(
            "gateway started",
            version=__version__,
            api=self.listeners.api,
            mm7=self.listeners.mm7,
            ops=self.listeners.ops,
        )

    async def _serve(self, app: web.Application, address: Any) -> tuple[str, int]:
        runner = web.AppRunner(
            app,
            access_log=access_logger_for(app),  # None (off) for the ops listener
            access_log_class=AccessLogger,
            shutdown_timeout=2.0,
            # aiohttp's keep-alive timer also runs from connection open until the first
            # complete request: it is our header read timeout (gateway/read_deadline.py).
            keepalive_timeout=self.config.listen.read_timeout_seconds,
        )
        await runner.setup()
        site = web.TCPSite(runner, address.host, address.port, reuse_address=True)
        await site.start()
        self.listeners.runners.append(runner)
        bound = runner.addresses[0]
        return str(bound[0]), int(bound[1])

    async def stop(self) -> None:
        grace = self.config.gateway.shutdown_grace_seconds
        resume = self._resume_task
        if resume is not None and not resume.done():
            resume.cancel()
            await asyncio.gather(resume, return_exceptions=True)
        # Stop intake first, so nothing new is accepted while we drain.
        for runner in self.listeners.runners[:1]:
            await runner.cleanup()
        await asyncio.gather(
            *(w.stop(grace, self.worker_tasks.get(n)) for n, w in self.workers.items())
        )
        for runner in self.listeners.runners[1:]:
            await runner.cleanup()
        self.listeners.runners.clear()
        await self.callbacks.stop()
        for client in self.clients.values():
            await client.close()
        if self.http is not None:
            await self.http.close()
        await self.store.close()
        log.info("gateway stopped")
