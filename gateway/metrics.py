"""Every Prometheus metric of the gateway (DESIGN.md §7), declared once on an injected registry.

Label values come only from configuration (route/MMSC names) and fixed enums below, never
from phone numbers or message ids; known series are pre-created at zero so dashboards and
alerts see them before the first event.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from gateway import __version__

STATUS_CLASSES: Final = (
    "success",
    "client_error",
    "server_error",
    "service_error",
    "http_error",
    "network_error",
    "timeout",
)
RETRY_REASONS: Final = ("status", "http", "network", "timeout", "slow_down")
MM_STATUSES: Final = (
    "Retrieved",
    "Forwarded",
    "Deferred",
    "Indeterminate",
    "Expired",
    "Rejected",
    "Unrecognised",
    "DeliveryConditionNotMet",
    "numeric_success",
    "numeric_failure",
    "other",
)
WEBHOOK_OUTCOMES: Final = ("delivered", "retry", "dead_letter")
MEDIA_RESULTS: Final = ("unchanged", "adapted", "converted", "link_fallback", "rejected")
_LENIENCY: Final = re.compile(r"^[a-z_]{1,40}$")

LATENCY_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)
WAIT_BUCKETS: Final = (0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)


def leniency_label(kind: str) -> str:
    """Bound the leniency label set: protocol's names are short snake_case words."""
    return kind if _LENIENCY.match(kind) else "other"


class Metrics:
    """The gateway's metrics; one instance per ``Gateway`` (and registry)."""

    def __init__(self, registry: CollectorRegistry, mmsc_names: Iterable[str]) -> None:
        self.registry = registry
        names = tuple(mmsc_names)
        self.messages_accepted_total = Counter(
            "mm7gw_messages_accepted_total",
            "Messages accepted through the REST API (answered 202), by first route.",
            ["route"],
            registry=registry,
        )
        self.submit_requests_total = Counter(
            "mm7gw_submit_requests_total",
            "MM7 SubmitReq attempts by outcome class (MM7 status range or transport error).",
            ["mmsc", "status_class"],
            registry=registry,
        )
        self.submit_latency_seconds = Histogram(
            "mm7gw_submit_latency_seconds",
            "Time from sending a SubmitReq to reading the MMSC's answer.",
            ["mmsc"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "mm7gw_queue_depth",
            "Submissions (SubmitReq batches) queued or in flight, per MMSC.",
            ["mmsc"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "mm7gw_in_flight",
            "SubmitReq HTTP exchanges currently open, per MMSC.",
            ["mmsc"],
            registry=registry,
        )
        self.throttle_wait_seconds = Histogram(
            "mm7gw_throttle_wait_seconds",
            "Time a submission waited for the route's (and sender's) token bucket.",
            ["mmsc"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.retries_total = Counter(
            "mm7gw_retries_total",
            "Submissions rescheduled for another attempt, by reason.",
            ["mmsc", "reason"],
            registry=registry,
        )
        self.delivery_reports_total = Counter(
            "mm7gw_delivery_reports_total",
            "DeliveryReportReq received from MMSCs, by MMStatus.",
            ["mmsc", "mm_status"],
            registry=registry,
        )
        self.unknown_delivery_reports_total = Counter(
            "mm7gw_unknown_delivery_reports_total",
            "Delivery reports whose MessageID matched no stored message (kept and answered 1000).",
            ["mmsc"],
            registry=registry,
        )
        self.inbound_messages_total = Counter(
            "mm7gw_inbound_messages_total",
            "Inbound MMS (DeliverReq) stored.",
            ["mmsc"],
            registry=registry,
        )
        self.webhook_deliveries_total = Counter(
            "mm7gw_webhook_deliveries_total",
            "Webhook POST attempts by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.dead_letters = Gauge(
            "mm7gw_dead_letters",
            "Webhook events that exhausted their retries (dead-lettered).",
            registry=registry,
        )
        self.media_adaptations_total = Counter(
            "mm7gw_media_adaptations_total",
            "Media parts handled by the pipeline, by result.",
            ["result"],
            registry=registry,
        )
        self.decode_leniencies_total = Counter(
            "mm7gw_decode_leniencies_total",
            "Vendor quirks tolerated while decoding MMSC input, by kind.",
            ["mmsc", "kind"],
            registry=registry,
        )
        self.api_requests_total = Counter(
            "mm7gw_api_requests_total",
            "REST API requests by method, route template and HTTP status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.build_info = Gauge(
            "mm7gw_build_info", "Build information (value is always 1).", ["version"], registry=registry
        )
        self.build_info.labels(version=__version__).set(1)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self._precreate(names)

    def _precreate(self, names: tuple[str, ...]) -> None:
        for name in names:
            self.messages_accepted_total.labels(route=name)
            self.queue_depth.labels(mmsc=name)
            self.in_flight.labels(mmsc=name)
            self.submit_latency_seconds.labels(mmsc=name)
            self.throttle_wait_seconds.labels(mmsc=name)
            self.inbound_messages_total.labels(mmsc=name)
            self.unknown_delivery_reports_total.labels(mmsc=name)
            for status_class in STATUS_CLASSES:
                self.submit_requests_total.labels(mmsc=name, status_class=status_class)
            for reason in RETRY_REASONS:
                self.retries_total.labels(mmsc=name, reason=reason)
            for mm_status in MM_STATUSES:
                self.delivery_reports_total.labels(mmsc=name, mm_status=mm_status)
        for outcome in WEBHOOK_OUTCOMES:
            self.webhook_deliveries_total.labels(outcome=outcome)
        for result in MEDIA_RESULTS:
            self.media_adaptations_total.labels(result=result)


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The text exposition of ``registry`` and its Content-Type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
