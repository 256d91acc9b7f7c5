"""The outbound flow built from the config: route settings, clients, workers, submission.

The one module of ``outbound`` that reads the config: it translates ``[[mmsc]]`` and
``[[pool]]`` into the settings dataclasses the components take, and builds them with
the collaborators the composition root hands in. Callbacks into parts built later (the
SMS worker, the webhook outbox) arrive as callables.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter

from gateway.config.mmsc import MmscConfig
from gateway.config.model import GatewayConfig
from gateway.config.pools import PoolConfig, quiet_window
from gateway.config.secrets import secret_text
from gateway.media.fetch import FetchPolicy
from gateway.media.store import MediaStorage
from gateway.ops.metrics import Metrics
from gateway.outbound.campaigns import CampaignService, CampaignWatcher
from gateway.outbound.content import MediaCache, RecentMessages
from gateway.outbound.content_fit import ContentFitter, RouteLimits
from gateway.outbound.control import MessageControl
from gateway.outbound.dispatcher import RouteSettings, RouteWorker
from gateway.outbound.mmsc_client import ClientSettings, MmscClient
from gateway.outbound.pools import PoolSenderSpec, PoolSpec, SenderPool
from gateway.outbound.queue import QueueGauge
from gateway.outbound.retry import RetryPolicy
from gateway.outbound.routing import Router, RouteRule
from gateway.outbound.submission import SubmissionService
from gateway.outbound.suppression import OptOut
from gateway.store import MessageRecord, Store


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
        password=secret_text(mmsc.password),
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


@dataclass(frozen=True, slots=True)
class Outbound:
    """Everything that carries messages from the API to the MMSCs, one worker a route."""

    settings: dict[str, RouteSettings]
    media_cache: MediaCache
    recent: RecentMessages
    queue: QueueGauge
    router: Router
    content: ContentFitter
    clients: dict[str, MmscClient]
    workers: dict[str, RouteWorker]
    submissions: SubmissionService
    campaigns: CampaignService
    campaign_watcher: CampaignWatcher
    control: MessageControl
    accepted_counters: dict[str, Counter]

    def count_accepted(self, route: str) -> None:
        """One more in ``messages_accepted_total`` of a route (unknown routes: none)."""
        counter = self.accepted_counters.get(route)
        if counter is not None:
            counter.inc()


def install_outbound(
    config: GatewayConfig,
    *,
    store: Store,
    media_store: MediaStorage,
    metrics: Metrics,
    clock: Callable[[], float],
    rng: random.Random,
    new_id: Callable[[], str],
    link_for: Callable[[str], str],
    wake: Callable[[str], None],
    events_added: Callable[[], None],
) -> Outbound:
    """Build the outbound flow. ``wake(route)`` tells a route (and the SMS worker) that
    work is due; ``events_added`` wakes the webhook outbox after the campaign watcher
    wrote events."""
    routes = config.mmsc
    settings = {m.name: route_settings(m) for m in routes}
    media_cache = MediaCache(media_store)
    recent = RecentMessages()
    queue = QueueGauge({m.name: metrics.queue_depth.labels(mmsc=m.name) for m in routes})
    accepted_counters = {
        m.name: metrics.messages_accepted_total.labels(route=m.name) for m in routes
    }
    router = Router([RouteRule(m.name, tuple(m.prefixes), m.route_default) for m in routes])
    clients = {m.name: MmscClient(client_settings(m)) for m in routes}
    # Each pool sender's own rate holds on whichever route carries its messages.
    sender_tps = {
        s.address: rate for p in config.pool for s in p.sender if (rate := s.rate) is not None
    }
    workers = {
        m.name: RouteWorker(
            settings[m.name],
            store,
            media_cache,
            clients[m.name],
            metrics,
            on_finished=queue.done,
            clock=clock,
            rng=rng,
            recent=recent,
            shared_rate=store.take_send_token if store.shared else None,
            sender_tps=sender_tps,
        )
        for m in routes
    }

    def accepted(record: MessageRecord) -> None:
        recent.add(record)
        counter = accepted_counters.get(record.route)
        if counter is not None:
            counter.inc()

    def media_action(action: str) -> None:
        # Per-part pipeline actions onto the metric's labels; "too_large" parts only occur
        # in a result that does not fit, which is counted once as link_fallback/rejected.
        label = {"first_frame": "adapted", "generated": None, "too_large": None}.get(action, action)
        if label is not None:
            metrics.media_adaptations_total.labels(result=label).inc()

    content = ContentFitter(
        media_store=media_store,
        limits={m.name: route_limits(m) for m in routes},
        fetch_policy=FetchPolicy(
            timeout_seconds=config.gateway.media_fetch_timeout_seconds,
            max_bytes=config.gateway.media_fetch_max_bytes,
            allow_private=config.gateway.allow_private_media_urls,
        ),
        on_media_action=media_action,
        link_for=link_for,
    )
    submissions = SubmissionService(
        store=store,
        router=router,
        content=content,
        queue=queue,
        max_queue_depth=config.gateway.max_queue_depth,
        wake=wake,
        on_accepted=accepted,
        clock=clock,
        allow_private_callbacks=config.webhooks.allow_private_urls,
        optout=OptOut(store, {m.name: m.sender for m in routes}),
        pools={p.name: SenderPool(pool_spec(p)) for p in config.pool},
        on_pool_send=metrics.pool_send,
        on_refusal=metrics.consent_refusal,
        new_id=new_id,
    )
    campaigns = CampaignService(
        store=store,
        submissions=submissions,
        router=router,
        queue=queue,
        max_queue_depth=config.gateway.max_queue_depth,
        wake=wake,
        on_accepted=lambda route, n: accepted_counters[route].inc(n),
        clock=clock,
        optout=submissions.optout,
    )
    control = MessageControl(
        store=store,
        workers=workers,
        submissions=submissions,
        recent=recent,
        queue=queue,
        metrics=metrics,
        clock=clock,
        hold_seconds=max(m.timeout_seconds for m in routes) * max(1, len(workers)) + 30,
    )
    return Outbound(
        settings=settings,
        media_cache=media_cache,
        recent=recent,
        queue=queue,
        router=router,
        content=content,
        clients=clients,
        workers=workers,
        submissions=submissions,
        campaigns=campaigns,
        campaign_watcher=CampaignWatcher(store, clock, events_added=events_added),
        control=control,
        accepted_counters=accepted_counters,
    )
