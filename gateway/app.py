"""The composition root: builds every component of the gateway from a frozen config.

``Gateway`` creates the store, the media store, one MMSC client and worker per route, the
submission service, cancel/replace, the MM7 listener with its handlers, the webhook
outbox and three aiohttp applications (REST API, MM7 callbacks, ops), and hands each
component the narrow collaborators it uses. No business logic lives here; tests and the
daemon both use it, and nothing here reads the environment or module globals.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from gateway import __version__
from gateway.api.batches import CAMPAIGNS, MAX_BATCH_RECIPIENTS, add_batch_routes
from gateway.api.body import body_limit_middleware
from gateway.api.inbound import InboundRoutes
from gateway.api.middleware import auth_middleware, errors_middleware, metrics_middleware
from gateway.api.pools import ConsentRoutes
from gateway.api.read_deadline import read_deadline_middleware
from gateway.api.routes import (
    CONTROL,
    MAX_BODY,
    MAX_MEDIA,
    MAX_RECIPIENTS,
    OPENAPI_PATH,
    SUBMISSIONS,
    add_routes,
)
from gateway.api.sms import SmsRoutes
from gateway.config.model import GatewayConfig, MmscConfig
from gateway.config.pools import DEFAULT_HELP_KEYWORDS, PoolConfig, quiet_window
from gateway.console.charts import CounterSampler
from gateway.console.context import PREFIX as CONSOLE_PREFIX
from gateway.console.context import ConsoleDeps, RouteStatus
from gateway.console.routes import add_console
from gateway.inbound.deliver import InboundService, InboundSettings
from gateway.inbound.delivery import ReportService
from gateway.inbound.handlers import CallbackHandlers
from gateway.inbound.keywords import (
    OptOutConfirmations,
    OptOutPolicy,
    PoolKeywordPolicy,
    PoolKeywords,
    Reply,
    normalise_keyword,
)
from gateway.inbound.mm7_server import Mm7Listener, Peer
from gateway.media.fetch import FetchPolicy
from gateway.media.links import MediaLinks
from gateway.media.short_links import MissLimiter, ShortLinks
from gateway.media.store import TOUCH_INTERVAL_SECONDS, MediaStorage, MediaStore
from gateway.ops.access_log import AccessLogger, access_logger_for, enable_access_log
from gateway.ops.cluster import Membership
from gateway.ops.health import HealthSources, add_ops_routes
from gateway.ops.ids import RandomIds
from gateway.ops.listener_tls import ListenerTls
from gateway.ops.metrics import Metrics
from gateway.ops.retention import DAY_SECONDS, Retention, RetentionSettings
from gateway.ops.sms_metrics import SmsMetrics
from gateway.ops.supervisor import WEBHOOK_TASK, RestartPolicy, Supervisor, route_task
from gateway.outbound.campaigns import CampaignService, CampaignWatcher
from gateway.outbound.content import MediaCache, RecentMessages, encode_stored_submit
from gateway.outbound.control import MessageControl
from gateway.outbound.dispatcher import RouteSettings, RouteWorker
from gateway.outbound.mmsc_client import ClientSettings, MmscClient
from gateway.outbound.pools import PoolSenderSpec, PoolSpec, SenderPool
from gateway.outbound.queue import QueueGauge
from gateway.outbound.request import SubmitRequest
from gateway.outbound.retry import RetryPolicy
from gateway.outbound.routing import Router, RouteRule
from gateway.outbound.submission import RouteLimits, SubmissionService
from gateway.outbound.suppression import OptOut
from gateway.sms.dlr import DlrIntake, dlr_url
from gateway.sms.fallback import SmsSettings, SmsWorker
from gateway.sms.kannel import KannelClient, KannelSettings
from gateway.store import Batch, MessageRecord, NewMessage, Store, build_backend
from gateway.webhooks.outbox import Outbox, WebhookSettings

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
        idle_probe_seconds=mmsc.idle_probe_seconds,
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


def route_limits(mmsc: MmscConfig) -> RouteLimits:
    return RouteLimits(
        max_message_bytes=mmsc.max_message_bytes,
        max_recipients_per_submit=mmsc.max_recipients_per_submit,
        default_validity_seconds=mmsc.retry.default_validity_seconds,
        transfer_encoding=mmsc.transfer_encoding,
        mms=mmsc.mms,
        media_policy=mmsc.media_policy,
        max_image_pixels=mmsc.max_image_pixels,
        allowed_types=frozenset(mmsc.allowed_types) if mmsc.allowed_types else None,
        sender=mmsc.sender,
        allow_first_frame=mmsc.allow_first_frame,
        fallback=mmsc.fallback,
        fallback_on=frozenset(mmsc.fallback_on),
    )


def pool_spec(pool: PoolConfig) -> PoolSpec:
    return PoolSpec(
        name=pool.name,
        consent=pool.consent,
        senders=tuple(PoolSenderSpec(s.address, s.carries_mms, s.rate) for s in pool.sender),
        quiet=quiet_window(pool.quiet_hours) if pool.quiet_hours else None,
        max_per_day=pool.max_per_recipient_per_day,
    )


def pool_keywords(config: GatewayConfig) -> PoolKeywords:
    """Each pool's keywords (unset: the ``[optout]`` STOP/START lists, HELP and INFO)."""

    def words(given: tuple[str, ...] | None, default: tuple[str, ...]) -> frozenset[str]:
        return frozenset(normalise_keyword(w) for w in (given or default))

    optout = config.optout
    return PoolKeywords(
        (
            [s.address for s in p.sender],
            PoolKeywordPolicy(
                pool=p.name,
                stop=words(p.stop_keywords, optout.stop_keywords),
                start=words(p.start_keywords, optout.start_keywords),
                help=words(p.help_keywords, DEFAULT_HELP_KEYWORDS),
                texts={"stop": p.stop_text, "start": p.start_text, "help": p.help_text},
            ),
        )
        for p in config.pool
    )


def peers(config: GatewayConfig) -> dict[str, Peer]:
    """Who may call back on each route, and how they authenticate."""
    return {
        m.name: Peer(
            name=m.name,
            version=m.version,
            username=m.inbound_username,
            password=_secret(m.inbound_password),
            allow=tuple(m.inbound_allow_ips),
        )
        for m in config.mmsc
    }


def webhook_settings(config: GatewayConfig) -> WebhookSettings:
    section = config.webhooks
    return WebhookSettings(
        timeout_seconds=section.timeout_seconds,
        max_attempts=section.max_attempts,
        initial_backoff_seconds=section.initial_backoff_seconds,
        max_backoff_seconds=section.max_backoff_seconds,
        max_age_seconds=section.give_up_after_seconds,
        per_destination_concurrency=section.per_destination_concurrency,
        trusted_urls=frozenset(k.callback_url for k in config.api_keys if k.callback_url),
        allow_private_urls=section.allow_private_urls,
    )


def inbound_owner(config: GatewayConfig) -> tuple[str | None, str | None]:
    """``(api key name, webhook url)`` that inbound messages go to: the first API key with
    a ``callback_url``; with none, inbound messages are visible to every key and no
    webhook is sent."""
    for key in config.api_keys:
        if key.callback_url:
            return key.name, key.callback_url
    return None, None


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
        restart_policy: RestartPolicy | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()
        # Message and request ids: kernel randomness read in blocks, not a syscall each.
        self.ids = RandomIds()
        self.registry = registry or CollectorRegistry()
        names = [m.name for m in config.mmsc]
        self.metrics = Metrics(self.registry, names)
        self.supervisor = Supervisor(
            lambda task: self.metrics.task_restarts_total.labels(task=task).inc(), restart_policy
        )
        self.metrics.add_pools({p.name: [s.address for s in p.sender] for p in config.pool})
        self.data_dir = Path(config.gateway.data_dir)
        url = config.store.url
        backend = build_backend(
            None if url is None else url.get_secret_value(),
            sqlite_path=self.data_dir / "gateway.sqlite3",
            pool_size=config.store.pool_size,
            instance_id=config.cluster.instance_id,
            lease_seconds=config.cluster.lease_seconds,
        )
        self.store: Store = backend.store
        # Shared by every instance with a shared store; files under data_dir otherwise.
        self.media_store: MediaStorage = backend.media or MediaStore(self.data_dir / "media")
        self.listeners = Listeners()
        listen = config.listen
        self.tls = (
            ListenerTls(listen.tls_cert_file, listen.tls_key_file, listen.mm7_client_ca_file)
            if listen.tls_cert_file is not None and listen.tls_key_file is not None
            else None
        )
        self.links = MediaLinks(
            ttl_seconds=float(config.gateway.media_url_ttl_seconds),
            base_url=self.base_url,
            clock=clock,
        )
        self.started_at = clock()
        self.http: aiohttp.ClientSession | None = None
        self._build_outbound()
        self.api_app = self._build_api_app()
        self.mm7_app = web.Application(
            middlewares=[read_deadline_middleware(config.listen.read_timeout_seconds)],
            client_max_size=config.listen.mm7_max_body_bytes,
        )
        enable_access_log(self.mm7_app, "mm7")
        self._build_inbound()
        self.retention = Retention(
            self.store,
            self.media_store,
            RetentionSettings(
                retention_seconds=config.store.retention_days * DAY_SECONDS,
                media_url_ttl_seconds=float(config.gateway.media_url_ttl_seconds),
                touch_slack_seconds=TOUCH_INTERVAL_SECONDS,
            ),
            self.metrics,
            clock,
        )
        self.membership = Membership(
            self.store,
            instance_id=config.cluster.instance_id,
            heartbeat_seconds=config.cluster.heartbeat_seconds,
            metrics=self.metrics,
            clock=clock,
            refresh=self._reload_queue if self.store.shared else None,
        )
        self._build_console()
        self._build_sms()
        self.ops_app = web.Application()
        add_ops_routes(
            self.ops_app,
            HealthSources(
                registry=self.registry,
                check_store=self.store.check_writable,
                circuits=lambda: {name: w.circuit for name, w in self.workers.items()},
                queue_depths=lambda: self.queue.depth,
                liveness=self._liveness,
            ),
        )

    # -- wiring ----------------------------------------------------------------------------
    def _build_outbound(self) -> None:
        config = self.config
        self.media_cache = MediaCache(self.media_store)
        self.recent = RecentMessages()
        self.queue = QueueGauge(
            {m.name: self.metrics.queue_depth.labels(mmsc=m.name) for m in config.mmsc}
        )
        self._accepted_counters = {
            m.name: self.metrics.messages_accepted_total.labels(route=m.name) for m in config.mmsc
        }
        self.router = Router(
            [RouteRule(m.name, tuple(m.prefixes), m.route_default) for m in config.mmsc]
        )
        self.clients = {m.name: MmscClient(client_settings(m)) for m in config.mmsc}
        # Each pool sender's own rate holds on whichever route carries its messages.
        sender_tps = {
            s.address: rate for p in config.pool for s in p.sender if (rate := s.rate) is not None
        }
        self.workers = {
            m.name: RouteWorker(
                route_settings(m),
                self.store,
                self.media_cache,
                self.clients[m.name],
                self.metrics,
                on_finished=self.queue.done,
                clock=self.clock,
                rng=self.rng,
                recent=self.recent,
                shared_rate=self.store.take_send_token if self.store.shared else None,
                sender_tps=sender_tps,
            )
            for m in config.mmsc
        }
        self.worker_tasks: dict[str, asyncio.Task[None]] = {}
        self._resume_task: asyncio.Task[None] | None = None
        self.submissions = SubmissionService(
            store=self.store,
            media_store=self.media_store,
            router=self.router,
            limits={m.name: route_limits(m) for m in config.mmsc},
            queue=self.queue,
            max_queue_depth=config.gateway.max_queue_depth,
            wake=self._wake,
            on_accepted=self._accepted,
            fetch_policy=FetchPolicy(
                timeout_seconds=config.gateway.media_fetch_timeout_seconds,
                max_bytes=config.gateway.media_fetch_max_bytes,
                allow_private=config.gateway.allow_private_media_urls,
            ),
            clock=self.clock,
            on_media_action=self._media_action,
            link_for=self.links.url,
            allow_private_callbacks=config.webhooks.allow_private_urls,
            optout=OptOut(self.store, {m.name: m.sender for m in config.mmsc}),
            pools={p.name: SenderPool(pool_spec(p)) for p in config.pool},
            on_pool_send=self.metrics.pool_send,
            on_refusal=self.metrics.consent_refusal,
            new_id=self.ids.hex,
        )
        self.campaigns = CampaignService(
            store=self.store,
            submissions=self.submissions,
            router=self.router,
            queue=self.queue,
            max_queue_depth=config.gateway.max_queue_depth,
            wake=self._wake,
            on_accepted=lambda route, n: self._accepted_counters[route].inc(n),
            clock=self.clock,
            optout=self.submissions.optout,
        )
        self.campaign_watcher = CampaignWatcher(
            self.store, self.clock, events_added=self._outbox_wake
        )
        self._campaign_task: asyncio.Task[None] | None = None
        self.control = MessageControl(
            store=self.store,
            workers=self.workers,
            submissions=self.submissions,
            recent=self.recent,
            queue=self.queue,
            metrics=self.metrics,
            clock=self.clock,
            hold_seconds=max(m.timeout_seconds for m in config.mmsc) * max(1, len(self.workers))
            + 30,
        )

    def _build_api_app(self) -> web.Application:
        keys = {_secret(k.key) or "": k.name for k in self.config.api_keys}
        app = web.Application(
            middlewares=[
                metrics_middleware(self.metrics),
                errors_middleware(lambda: self.ids.hex(8)),
                # The console authenticates by its own session cookie.
                auth_middleware(  # type: ignore[list-item]
                    keys,
                    public_prefixes=("/v1/media/", OPENAPI_PATH, CONSOLE_PREFIX, "/m/", "/sms/dlr"),
                ),
                body_limit_middleware(self.config.gateway.max_body_bytes),
                read_deadline_middleware(self.config.listen.read_timeout_seconds),
            ],
            client_max_size=self.config.gateway.max_body_bytes,
        )
        app[SUBMISSIONS] = self.submissions
        app[CONTROL] = self.control
        app[MAX_RECIPIENTS] = self.config.gateway.max_recipients_per_message
        app[MAX_MEDIA] = self.config.gateway.max_media_parts
        app[MAX_BODY] = self.config.gateway.max_body_bytes
        add_routes(app)
        app[CAMPAIGNS] = self.campaigns
        app[MAX_BATCH_RECIPIENTS] = self.config.gateway.max_recipients_per_batch
        add_batch_routes(app)
        enable_access_log(app, "api")
        return app

    def _build_inbound(self) -> None:
        config = self.config
        owner = inbound_owner(config)
        section = config.optout
        self._webhook_secrets = {
            k.name: k.webhook_signing_secret.get_secret_value() for k in config.api_keys
        }
        self.outbox = Outbox(
            self.store,
            webhook_settings(config),
            self._webhook_secret,
            self.metrics,
            self.clock,
            self.rng,
            spawn=lambda run: self.supervisor.spawn(WEBHOOK_TASK, run),
        )
        reply_owner = owner[0] or config.api_keys[0].name

        def build_reply(reply: Reply) -> NewMessage:
            # The record only: it commits with the inbound message that asked for it. A
            # confirmation skips the suppression check (the number has just opted out,
            # and this is the one message carriers expect it to get).
            request = SubmitRequest(
                to=(reply.to,),
                sender=reply.sender,
                text=reply.text,
                route=reply.route,
                delivery_report=False,
            )
            return self.submissions.text_message(reply_owner, request)

        def reply_committed(new: NewMessage) -> None:
            self.submissions.committed(new)
            counter = self._accepted_counters.get(new.route)
            if counter is not None:
                counter.inc()

        self.inbound = InboundService(
            self.store,
            self.media_store,
            InboundSettings(
                owners={m.name: owner for m in config.mmsc},
                policy=OptOutPolicy.build(
                    section.enabled, section.stop_keywords, section.start_keywords
                ),
            ),
            self.links,
            self.clock,
            confirmations=OptOutConfirmations(
                build_reply,
                texts={"stop": section.confirmation_text, "start": section.start_confirmation_text},
            ),
            pool_keywords=pool_keywords(config),
        )
        handlers = CallbackHandlers(
            reports=ReportService(self.store, self.metrics, self.clock),
            inbound=self.inbound,
            metrics=self.metrics,
            events_added=self.outbox.wake,
            reply_committed=reply_committed,
        )
        self.listener = Mm7Listener(
            peers(config),
            handlers.as_handlers(),
            self.metrics,
            max_body_bytes=config.listen.mm7_max_body_bytes,
        )
        self.listener.add_routes(self.mm7_app)
        InboundRoutes(self.store, self.media_store, self.links, self.clock).add_routes(self.api_app)
        ConsentRoutes(self.store, frozenset(p.name for p in config.pool), self.clock).add_routes(
            self.api_app
        )

    def _build_console(self) -> None:
        self.sampler = CounterSampler(self.registry, clock=self.clock)
        settings = {m.name: route_settings(m) for m in self.config.mmsc}

        def route_status() -> list[RouteStatus]:
            return [
                RouteStatus(
                    name=name,
                    circuit=worker.circuit,
                    configured_tps=worker.route.tps,
                    allowed_tps=0.0 if worker.bucket.unlimited else worker.bucket.effective_rate,
                    queue_depth=self.queue.depth.get(name, 0),
                    in_flight=len(worker.in_flight),
                )
                for name, worker in self.workers.items()
            ]

        async def reencode(message: MessageRecord, batch: Batch) -> tuple[str, bytes]:
            return await encode_stored_submit(
                settings[batch.route], self.clients[batch.route].encode_async, self.media_cache,
                message, batch,
            )  # fmt: skip

        async def submit(api_key: str, request: SubmitRequest) -> MessageRecord:
            record, _ = await self.submissions.submit(
                api_key, request, idempotency_key=None, request_hash=None
            )
            return record

        add_console(
            self.api_app,
            ConsoleDeps(
                store=self.store,
                admin_keys={
                    _secret(k.key) or "": k.name for k in self.config.api_keys if k.role == "admin"
                },
                route_status=route_status,
                sampler=self.sampler,
                reencode=reencode,
                submit=submit,
                media=self.media_store.get,
                thumbs_dir=self.data_dir / "thumbs",
                wake_outbox=self.outbox.wake,
                pools={p.name: p.consent for p in self.config.pool},
                mask_numbers=self.config.logging.mask_numbers,
                clock=self.clock,
            ),
        )

    def _build_sms(self) -> None:
        """The SMS fallback (DESIGN.md §13): worker, Kannel reports and short links."""
        section = self.config.sms
        self.sms_metrics = SmsMetrics(self.registry)
        self.sms_worker: SmsWorker | None = None
        short = ShortLinks(
            save=self.store.short_link,
            base_url=self.base_url,
            ttl_seconds=float(self.config.gateway.media_url_ttl_seconds),
            clock=self.clock,
        )
        if section is not None:
            self.sms_worker = SmsWorker(
                self.store,
                KannelClient(
                    KannelSettings(
                        sendsms_url=section.sendsms_url,
                        username=section.username,
                        password=_secret(section.password) or "",
                        timeout_seconds=section.timeout_seconds,
                    )
                ),
                SmsSettings(
                    tps=section.tps,
                    max_attempts=section.max_attempts,
                    initial_backoff_seconds=section.initial_backoff_seconds,
                    max_backoff_seconds=section.max_backoff_seconds,
                    max_segments=section.max_segments,
                    resend_after_seconds=section.resend_after_seconds,
                    sender=section.sender,
                ),
                self.sms_metrics,
                short_link=short.url,
                dlr_url=lambda intent: dlr_url(self.base_url(), self.links.key, intent),
                route_senders={m.name: m.sender for m in self.config.mmsc},
                clock=self.clock,
                rng=self.rng,
                on_change=self.outbox.wake,
            )
        intake = DlrIntake(
            self.store,
            self.sms_metrics,
            key=lambda: self.links.key,
            allow=tuple(section.dlr_allow_ips) if section else (),
            clock=self.clock,
            on_change=self.outbox.wake,
        )
        SmsRoutes(
            self.store,
            self.media_store,
            intake,
            MissLimiter(misses=20, window=60.0, clock=time.monotonic),
            self.sms_metrics,
            self.clock,
        ).add_routes(self.api_app)

    def _webhook_secret(self, api_key: str | None) -> str:
        """The HMAC secret of an API key's webhooks (unknown keys: the media signing key)."""
        secret = self._webhook_secrets.get(api_key or "")
        return secret if secret is not None else self.links.key.hex()

    def base_url(self) -> str:
        """Where clients reach the API: ``[gateway] public_url`` if set, else the listener."""
        section = self.config.gateway
        bound = self.listeners.api
        if "public_url" in section.model_fields_set or bound is None:
            return section.public_url
        host, port = bound
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"

    def _media_action(self, action: str) -> None:
        # Per-part pipeline actions onto the metric's labels; "too_large" parts only occur
        # in a result that does not fit, which is counted once as link_fallback/rejected.
        label = {"first_frame": "adapted", "generated": None, "too_large": None}.get(action, action)
        if label is not None:
            self.metrics.media_adaptations_total.labels(result=label).inc()

    def _liveness(self) -> list[str]:
        store = self.store.dead_reason()
        return [*self.supervisor.dead(), *([f"store: {store}"] if store else [])]

    def _outbox_wake(self) -> None:
        """The campaign watcher wrote events (the outbox is built after it)."""
        self.outbox.wake()

    def _wake(self, route: str) -> None:
        worker = self.workers.get(route)
        if worker is not None:
            worker.wake()
        if self.sms_worker is not None:  # an SMS-only message has its intents already
            self.sms_worker.wake()

    async def _reload_queue(self) -> None:
        # Peers finish what we accepted and the other way round: the store has the count.
        self.queue.reload(await self.store.queue_depths())

    def _accepted(self, record: MessageRecord) -> None:
        self.recent.add(record)
        counter = self._accepted_counters.get(record.route)
        if counter is not None:
            counter.inc()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self.store.open()
        # Bulk sends a previous run was still committing were never acknowledged.
        discarded = await self.store.discard_preparing_campaigns(self.clock())
        if discarded:
            log.warning("discarded unanswered bulk sends of a previous run", count=discarded)
        requeued = await self.store.requeue_in_flight(self.clock())
        if requeued:
            log.warning("requeued submissions left in flight by a previous run", count=requeued)
        self.queue.reload(await self.store.queue_depths())
        await self.membership.start()
        self.http = aiohttp.ClientSession()
        self.submissions.http = self.http
        for client in self.clients.values():
            await client.open()
        await self.links.load(
            _secret(self.config.gateway.signing_key), self.data_dir / "signing.key"
        )
        await self.store.sync_webhook_targets(
            {k.name: k.callback_url for k in self.config.api_keys if k.callback_url}
        )
        await self.outbox.start()
        self.retention.start()
        self.sampler.start()
        await self.store.sync_sms_routes(
            {m.name: m.fallback_on for m in self.config.mmsc if m.fallback == "sms"}
        )
        if self.sms_worker is not None:
            await self.sms_worker.start()
        for name, worker in self.workers.items():
            self.worker_tasks[name] = self.supervisor.spawn(route_task(name), worker.run)
        self._campaign_task = self.supervisor.spawn("campaigns", self.campaign_watcher.run)
        self._resume_task = asyncio.create_task(
            self.control.resume_cancels(), name="resume-cancels"
        )
        listen = self.config.listen
        tls = self.tls
        self.listeners.api = await self._serve(self.api_app, listen.api, tls.api if tls else None)
        self.listeners.mm7 = await self._serve(self.mm7_app, listen.mm7, tls.mm7 if tls else None)
        self.listeners.ops = await self._serve(self.ops_app, listen.ops)
        log.info(
            "gateway started",
            version=__version__,
            api=self.listeners.api,
            mm7=self.listeners.mm7,
            ops=self.listeners.ops,
        )

    def reload_tls(self) -> bool:
        """SIGHUP: the listeners' certificates are read again (see ``ListenerTls``)."""
        return self.tls.reload() if self.tls is not None else False

    async def _serve(
        self, app: web.Application, address: Any, ssl_context: ssl.SSLContext | None = None
    ) -> tuple[str, int]:
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
        site = web.TCPSite(
            runner, address.host, address.port, reuse_address=True, ssl_context=ssl_context
        )
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
        self.supervisor.stop()  # no restarts, no back-off waits while we stop
        campaign_task = self._campaign_task
        if campaign_task is not None:
            campaign_task.cancel()
            await asyncio.gather(campaign_task, return_exceptions=True)
        # Stop intake first, so nothing new is accepted while we drain.
        for runner in self.listeners.runners[:1]:
            await runner.cleanup()
        await asyncio.gather(
            *(w.stop(grace, self.worker_tasks.get(n)) for n, w in self.workers.items())
        )
        for runner in self.listeners.runners[1:]:
            await runner.cleanup()
        self.listeners.runners.clear()
        await self.retention.stop()
        await self.membership.stop()
        if self.sms_worker is not None:
            await self.sms_worker.stop()
        await self.outbox.stop()
        await self.sampler.stop()
        for client in self.clients.values():
            await client.close()
        if self.http is not None:
            await self.http.close()
        await self.store.close()
        log.info("gateway stopped")
