"""The composition root: builds every component of the gateway from a frozen config.

``Gateway`` creates the store, the media store, the metrics and the supervisor, then has
each part of the flow build itself from the config with the collaborators it is handed:
``outbound.install`` (clients, route workers, submission, bulk sends, cancel/replace),
``api.install`` (the REST application), ``webhooks.install`` (the outbox),
``inbound.install`` (the MM7 listener and its handlers), ``console.install`` and
``sms.install`` (the SMS fallback); then the ops listener, retention and cluster
membership. It starts and stops them in order. No business logic lives here; tests and
the daemon both use it, and nothing here reads the environment or module globals.
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
from gateway.api.install import add_inbound_routes, add_sms_routes, build_api_app
from gateway.api.read_deadline import read_deadline_middleware
from gateway.config.model import GatewayConfig
from gateway.config.secrets import secret_text
from gateway.console.context import PREFIX as CONSOLE_PREFIX
from gateway.console.install import install_console
from gateway.inbound.install import install_inbound
from gateway.inbound.keywords import Reply
from gateway.media.links import MediaLinks
from gateway.media.store import TOUCH_INTERVAL_SECONDS, MediaStorage, MediaStore
from gateway.ops.access_log import AccessLogger, access_logger_for, enable_access_log
from gateway.ops.cluster import Membership
from gateway.ops.health import HealthSources, add_ops_routes
from gateway.ops.ids import RandomIds
from gateway.ops.listener_tls import ListenerTls
from gateway.ops.metrics import Metrics
from gateway.ops.retention import DAY_SECONDS, Retention, RetentionSettings
from gateway.ops.supervisor import WEBHOOK_TASK, RestartPolicy, Supervisor, route_task
from gateway.outbound.install import install_outbound
from gateway.outbound.request import SubmitRequest
from gateway.sms.install import install_sms
from gateway.store import NewMessage, Store, build_backend
from gateway.webhooks.install import install_outbox

log = structlog.get_logger("gateway.app")


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
        self._build_flows()
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
    def _build_flows(self) -> None:
        """Each part of the flow builds itself; late parts are reached through methods."""
        config, store, media_store, clock = self.config, self.store, self.media_store, self.clock
        outbound = install_outbound(
            config,
            store=store,
            media_store=media_store,
            metrics=self.metrics,
            clock=clock,
            rng=self.rng,
            new_id=self.ids.hex,
            link_for=self.links.url,
            wake=self._wake,
            events_added=self._outbox_wake,
        )
        self.outbound = outbound
        # The parts start/stop, health and tests reach directly.
        self.queue = outbound.queue
        self.clients = outbound.clients
        self.workers = outbound.workers
        self.submissions = outbound.submissions
        self.campaign_watcher = outbound.campaign_watcher
        self.worker_tasks: dict[str, asyncio.Task[None]] = {}
        self._resume_task: asyncio.Task[None] | None = None
        self._campaign_task: asyncio.Task[None] | None = None
        self.api_app = build_api_app(
            config,
            metrics=self.metrics,
            new_request_id=lambda: self.ids.hex(8),
            submissions=outbound.submissions,
            control=outbound.control,
            campaigns=outbound.campaigns,
            # The console authenticates by its own session cookie.
            other_public_prefixes=(CONSOLE_PREFIX,),
        )
        self.mm7_app = web.Application(
            middlewares=[read_deadline_middleware(config.listen.read_timeout_seconds)],
            client_max_size=config.listen.mm7_max_body_bytes,
        )
        enable_access_log(self.mm7_app, "mm7")
        self.outbox = install_outbox(
            config,
            store=store,
            metrics=self.metrics,
            clock=clock,
            rng=self.rng,
            links=self.links,
            spawn=lambda run: self.supervisor.spawn(WEBHOOK_TASK, run),
        )
        inbound = install_inbound(
            config,
            self.mm7_app,
            store=store,
            media_store=media_store,
            links=self.links,
            metrics=self.metrics,
            clock=clock,
            build_reply=self._reply_record,
            reply_committed=self._reply_committed,
            events_added=self.outbox.wake,
        )
        self.inbound = inbound.service
        self.listener = inbound.listener
        add_inbound_routes(
            self.api_app,
            store=store,
            media_store=media_store,
            links=self.links,
            pools=frozenset(p.name for p in config.pool),
            clock=clock,
        )
        self.sampler = install_console(
            config,
            self.api_app,
            outbound=outbound,
            store=store,
            media_store=media_store,
            registry=self.registry,
            data_dir=self.data_dir,
            wake_outbox=self.outbox.wake,
            clock=clock,
        )
        sms = install_sms(
            config,
            store=store,
            registry=self.registry,
            links=self.links,
            base_url=self.base_url,
            clock=clock,
            rng=self.rng,
            on_change=self.outbox.wake,
        )
        self.sms_metrics = sms.metrics
        self.sms_worker = sms.worker
        add_sms_routes(self.api_app, store=store, media_store=media_store, sms=sms, clock=clock)

    def _reply_record(self, api_key: str, reply: Reply) -> NewMessage:
        # The record only: it commits with the inbound message that asked for it. A
        # confirmation skips the suppression check (the number has just opted out, and
        # this is the one message carriers expect it to get).
        request = SubmitRequest(
            to=(reply.to,), sender=reply.sender, text=reply.text, route=reply.route,
            delivery_report=False,
        )  # fmt: skip
        return self.submissions.text_message(api_key, request)

    def _reply_committed(self, new: NewMessage) -> None:
        self.submissions.committed(new)
        self.outbound.count_accepted(new.route)

    def base_url(self) -> str:
        """Where clients reach the API: ``[gateway] public_url`` if set, else the listener."""
        section = self.config.gateway
        bound = self.listeners.api
        if "public_url" in section.model_fields_set or bound is None:
            return section.public_url
        host, port = bound
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"

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
        self.outbound.content.http = self.http
        for client in self.clients.values():
            await client.open()
        await self.links.load(
            secret_text(self.config.gateway.signing_key), self.data_dir / "signing.key"
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
            self.outbound.control.resume_cancels(), name="resume-cancels"
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
