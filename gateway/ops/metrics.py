# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Every Prometheus metric of the gateway (DESIGN.md §7), declared once on an injected registry.

Theory of operation: ``Metrics(registry, mmsc_names)`` creates each metric on the given
registry (one per ``Gateway``; no module-level metric objects, so tests build as many as
they like) plus the process, platform and GC collectors. Names carry base units
(``_seconds``, ``_total``). Label values come only from configuration (route/MMSC names)
and the fixed enums below, never from phone numbers, message ids or raw paths. Callers
label the metric attributes directly with values from those sets; the two labels that
derive from outside input (a peer's leniency kinds, a REST request's method and route) go
through the helpers ``leniencies`` and ``api_request``, which map anything unknown to
``other``/``unknown``/``unmatched``, so a hostile peer or client cannot blow up the series
count. Known series are pre-created at zero so dashboards and alerts see them before the
first event.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder

from gateway import __version__
from gateway.ops.supervisor import WEBHOOK_TASK, route_task
from protocol.messages import MM_DELIVERY_STATUSES

OTHER: Final = "other"
UNKNOWN_MMSC: Final = "unknown"

#: ``mm7gw_submit_requests_total{status_class}``: the MM7 status range of the answer
#: (1xxx success, 2xxx client, 3xxx server, 4xxx service) or the transport failure.
STATUS_CLASSES: Final = (
    "success",
    "client_error",
    "server_error",
    "service_error",
    "http_error",
    "network_error",
    "timeout",
)
#: ``mm7gw_retries_total{reason}``.
RETRY_REASONS: Final = ("status", "http", "network", "timeout", "slow_down")
#: How a submission batch (one SubmitReq's worth of recipients) ends on our side.
SUBMISSION_OUTCOMES: Final = ("submitted", "rejected", "failed", "expired", "canceled")
#: ``mm7gw_delivery_reports_total{mm_status}``: the 8 MM7 MMStatus values, the numeric
#: statuses some MMSCs send instead (1000 = success), and ``other``.
MM_STATUSES: Final = (*MM_DELIVERY_STATUSES, "numeric_success", "numeric_failure", OTHER)
#: ``mm7gw_consent_refusals_total{reason}``: why a pool recipient was refused.
REFUSAL_REASONS: Final = ("consent_required", "recipient_opted_out", "frequency_capped")
#: ``mm7gw_keyword_events_total{keyword}``.
KEYWORDS: Final = ("stop", "start", "help")
#: ``mm7gw_webhook_deliveries_total{outcome}``.
WEBHOOK_OUTCOMES: Final = ("delivered", "retry", "dead_letter")
#: ``mm7gw_media_adaptations_total{result}``.
#: ``mm7gw_media_adaptations_total{result}``, one per media part: sent as given, stripped
#: of metadata (losslessly), re-encoded smaller, converted to another format; or, per
#: message, sent as a link instead, or refused (413/422).
MEDIA_RESULTS: Final = (
    "unchanged", "stripped", "adapted", "converted", "link_fallback", "rejected"
)  # fmt: skip
#: ``mm7gw_route_circuit_state{state}``: one 0/1 series per state of a route's circuit.
CIRCUIT_STATES: Final = ("closed", "degraded", "open")
#: ``mm7gw_route_probes_total{outcome}``: idle-route probes (see ``outbound/dispatcher.py``).
PROBE_OUTCOMES: Final = ("ok", "failed")
#: ``mm7gw_api_requests_total{method}``.
HTTP_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: protocol names its leniencies in short snake_case and exposes no list of them, so the
#: shape bounds the label set.
_LENIENCY: Final = re.compile(r"^[a-z_]{1,40}$")
#: Route templates look like ``/v1/messages/{id}``; anything else is not a template.
_ROUTE_TEMPLATE: Final = re.compile(r"^/[A-Za-z0-9_./{}-]{0,100}$")
#: What retention deletes (``mm7gw_retention_purged_total{kind}``).
RETENTION_KINDS: Final = ("messages", "campaigns", "inbound", "events", "reports", "media")

#: 1 ms .. 30 s, roughly x2.5 per step: MMSC answers range from LAN-fast to timeouts.
LATENCY_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
#: 0 (no wait: the common case gets its own bucket) .. 60 s (a slowed-down long code).
WAIT_BUCKETS: Final = (0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)
#: Delivery reports arrive seconds to a day after acceptance (handsets off, retries).
REPORT_LATENCY_BUCKETS: Final = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
                                 7200.0, 21600.0, 86400.0)  # fmt: skip


def _bounded(value: str, allowed: Iterable[str], fallback: str = OTHER) -> str:
    return value if value in allowed else fallback


def leniency_label(kind: str) -> str:
    """Bound the leniency label set: protocol's names are short snake_case words."""
    return kind if _LENIENCY.match(kind) else OTHER


class Metrics:
    """The gateway's metrics; one instance per ``Gateway`` (and registry).

    Args:
        registry: where every metric and the process/platform/GC collectors register.
        mmsc_names: the configured ``[[mmsc]]`` names; their series start at zero.
    """

    def __init__(self, registry: CollectorRegistry, mmsc_names: Iterable[str] = ()) -> None:
        self.registry = registry
        self._api_children: dict[tuple[str, str | None, int], Any] = {}
        self.mmsc_names: tuple[str, ...] = tuple(mmsc_names)
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
            "Time from sending a SubmitReq to reading the MMSC's answer, in seconds.",
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
            "Time a submission waited for the route's (and sender's) token bucket, in seconds.",
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
        self.submission_outcomes_total = Counter(
            "mm7gw_submission_outcomes_total",
            "Submission batches (one SubmitReq's recipients) that ended: submitted (MMSC "
            "answered success), rejected, failed, expired or canceled.",
            ["mmsc", "outcome"],
            registry=registry,
        )
        self.delivery_reports_total = Counter(
            "mm7gw_delivery_reports_total",
            "DeliveryReportReq received from MMSCs, by MMStatus.",
            ["mmsc", "mm_status"],
            registry=registry,
        )
        self.delivery_report_latency_seconds = Histogram(
            "mm7gw_delivery_report_latency_seconds",
            "Time from accepting a message to the delivery report that made a recipient "
            "final (delivered, expired, rejected, failed), in seconds.",
            ["mmsc"],
            buckets=REPORT_LATENCY_BUCKETS,
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
            "Webhook events that exhausted their retries (dead-lettered) and are kept.",
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
            "REST API requests by method, matched route template and HTTP status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.cluster_instances = Gauge(
            "mm7gw_cluster_instances",
            "Gateway instances sharing this store that announced themselves recently.",
            registry=registry,
        )
        self.retention_purged_total = Counter(
            "mm7gw_retention_purged_total",
            "Rows and media files deleted by retention, by kind.",
            ["kind"],
            registry=registry,
        )
        self.task_restarts_total = Counter(
            "mm7gw_task_restarts_total",
            "Background tasks (route workers, webhook outbox) restarted after a failure.",
            ["task"],
            registry=registry,
        )
        self.route_circuit_state = Gauge(
            "mm7gw_route_circuit_state",
            "Circuit state of each route: 1 for the current state, 0 for the others.",
            ["mmsc", "state"],
            registry=registry,
        )
        self.route_probes_total = Counter(
            "mm7gw_route_probes_total",
            "Probes of an idle route's MMSC by outcome (failed: connection error or 5xx).",
            ["mmsc", "outcome"],
            registry=registry,
        )
        self.pool_sends_total = Counter(
            "mm7gw_pool_sends_total",
            "Recipients accepted from a sender pool, by pool and the sender chosen.",
            ["pool", "sender"],
            registry=registry,
        )
        self.consent_refusals_total = Counter(
            "mm7gw_consent_refusals_total",
            "Pool recipients refused at submission, by pool and reason.",
            ["pool", "reason"],
            registry=registry,
        )
        self.keyword_events_total = Counter(
            "mm7gw_keyword_events_total",
            "STOP/START/HELP keywords received by pool senders, by pool and keyword.",
            ["pool", "keyword"],
            registry=registry,
        )
        self.pool_senders: dict[str, tuple[str, ...]] = {}
        self.build_info = Gauge(
            "mm7gw_build_info",
            "Build information of the running gateway (value is always 1).",
            ["version"],
            registry=registry,
        )
        self.build_info.labels(version=__version__).set(1)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self._precreate()

    def _precreate(self) -> None:
        for name in self.mmsc_names:
            self.messages_accepted_total.labels(route=name)
            self.queue_depth.labels(mmsc=name)
            self.in_flight.labels(mmsc=name)
            self.submit_latency_seconds.labels(mmsc=name)
            self.throttle_wait_seconds.labels(mmsc=name)
            self.inbound_messages_total.labels(mmsc=name)
            self.unknown_delivery_reports_total.labels(mmsc=name)
            self.delivery_report_latency_seconds.labels(mmsc=name)
            for status_class in STATUS_CLASSES:
                self.submit_requests_total.labels(mmsc=name, status_class=status_class)
            for outcome in SUBMISSION_OUTCOMES:
                self.submission_outcomes_total.labels(mmsc=name, outcome=outcome)
            for reason in RETRY_REASONS:
                self.retries_total.labels(mmsc=name, reason=reason)
            for mm_status in MM_STATUSES:
                self.delivery_reports_total.labels(mmsc=name, mm_status=mm_status)
            for outcome in PROBE_OUTCOMES:
                self.route_probes_total.labels(mmsc=name, outcome=outcome)
            self.task_restarts_total.labels(task=route_task(name))
            for state in CIRCUIT_STATES:  # the route worker makes them live
                self.route_circuit_state.labels(mmsc=name, state=state)
        self.task_restarts_total.labels(task=WEBHOOK_TASK)
        for outcome in WEBHOOK_OUTCOMES:
            self.webhook_deliveries_total.labels(outcome=outcome)
        for result in MEDIA_RESULTS:
            self.media_adaptations_total.labels(result=result)
        for kind in RETENTION_KINDS:
            self.retention_purged_total.labels(kind=kind)

    def add_pools(self, pools: Mapping[str, Iterable[str]]) -> None:
        """The configured ``[[pool]]`` names and their sender addresses: series at zero."""
        self.pool_senders = {name: tuple(senders) for name, senders in pools.items()}
        for name, senders in self.pool_senders.items():
            for sender in senders:
                self.pool_sends_total.labels(pool=name, sender=sender)
            for reason in REFUSAL_REASONS:
                self.consent_refusals_total.labels(pool=name, reason=reason)
            for keyword in KEYWORDS:
                self.keyword_events_total.labels(pool=name, keyword=keyword)

    def pool_send(self, pool: str, sender: str) -> None:
        senders = self.pool_senders.get(pool, ())
        self.pool_sends_total.labels(
            pool=_bounded(pool, tuple(self.pool_senders), OTHER),
            sender=_bounded(sender, senders, OTHER),
        ).inc()

    def consent_refusal(self, pool: str, reason: str) -> None:
        self.consent_refusals_total.labels(
            pool=_bounded(pool, tuple(self.pool_senders), OTHER),
            reason=_bounded(reason, REFUSAL_REASONS, OTHER),
        ).inc()

    def keyword_event(self, pool: str, keyword: str) -> None:
        self.keyword_events_total.labels(
            pool=_bounded(pool, tuple(self.pool_senders), OTHER),
            keyword=_bounded(keyword, KEYWORDS, OTHER),
        ).inc()

    # -- label-checked helpers (only where a label comes from outside our code) ----------
    def leniencies(self, mmsc: str, kinds: Iterable[str]) -> None:
        """Count each leniency ``decode()`` reported for one MMSC request."""
        name = _bounded(mmsc, self.mmsc_names, UNKNOWN_MMSC)
        for kind in kinds:
            self.decode_leniencies_total.labels(mmsc=name, kind=leniency_label(kind)).inc()

    def api_request(self, method: str, route: str | None, status: int) -> None:
        """One REST request; ``route`` is the matched template (``/v1/messages/{id}``).

        Pass ``None`` when nothing matched (404s): raw paths never become labels.
        """
        key = (method, route, status)
        child = self._api_children.get(key)
        if child is None:
            template = route if route is not None and _ROUTE_TEMPLATE.match(route) else "unmatched"
            child = self.api_requests_total.labels(
                method=_bounded(method.upper(), HTTP_METHODS), route=template, status=str(status)
            )
            # Keys are as bounded as the labels: a method outside HTTP_METHODS is a label
            # "other" but its own key, so cap the memo rather than trust the input.
            if len(self._api_children) < 4096:
                self._api_children[key] = child
        child.inc()


def exposition(registry: CollectorRegistry, accept_header: str | None = None) -> tuple[bytes, str]:
    """The body and Content-Type for ``GET /metrics``.

    Args:
        registry: what to expose.
        accept_header: the request's ``Accept``; OpenMetrics when the scraper asks for it,
            else the Prometheus text format.
    """
    encoder, content_type = choose_encoder(accept_header or "")
    return encoder(registry), content_type
