"""The SMS fallback (DESIGN.md §13) built from ``[sms]``: worker, Kannel reports, links.

The one module of ``sms`` that reads the config. Without an ``[sms]`` section there is no
worker, but the report intake still answers (and refuses every caller).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from gateway.config.model import GatewayConfig
from gateway.config.secrets import secret_text
from gateway.media.links import MediaLinks
from gateway.media.short_links import ShortLinks
from gateway.ops.sms_metrics import SmsMetrics
from gateway.sms.dlr import DlrIntake, dlr_url
from gateway.sms.fallback import SmsSettings, SmsWorker
from gateway.sms.kannel import KannelClient, KannelSettings
from gateway.store import Store


@dataclass(frozen=True, slots=True)
class SmsFallback:
    metrics: SmsMetrics
    worker: SmsWorker | None
    intake: DlrIntake


def install_sms(
    config: GatewayConfig,
    *,
    store: Store,
    registry: CollectorRegistry,
    links: MediaLinks,
    base_url: Callable[[], str],
    clock: Callable[[], float],
    rng: random.Random,
    on_change: Callable[[], None],
) -> SmsFallback:
    """``base_url()`` is where clients reach the API (known once it listens);
    ``on_change`` wakes the webhook outbox after a commit that added events."""
    section = config.sms
    metrics = SmsMetrics(registry)
    worker: SmsWorker | None = None
    short = ShortLinks(
        save=store.short_link,
        base_url=base_url,
        ttl_seconds=float(config.gateway.media_url_ttl_seconds),
        clock=clock,
    )
    if section is not None:
        worker = SmsWorker(
            store,
            KannelClient(
                KannelSettings(
                    sendsms_url=section.sendsms_url,
                    username=section.username,
                    password=secret_text(section.password) or "",
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
            metrics,
            short_link=short.url,
            dlr_url=lambda intent: dlr_url(base_url(), links.key, intent),
            route_senders={m.name: m.sender for m in config.mmsc},
            clock=clock,
            rng=rng,
            on_change=on_change,
        )
    intake = DlrIntake(
        store,
        metrics,
        key=lambda: links.key,
        allow=tuple(section.dlr_allow_ips) if section else (),
        clock=clock,
        on_change=on_change,
    )
    return SmsFallback(metrics=metrics, worker=worker, intake=intake)
