"""``Metrics``: every DESIGN.md §7 metric, help strings, zero series, bounded labels, exposition."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from gateway import __version__
from gateway.inbound.reports import DELIVERY_STATUS_LABELS
from gateway.ops.metrics import (
    MEDIA_RESULTS,
    MM_STATUSES,
    RETRY_REASONS,
    STATUS_CLASSES,
    WEBHOOK_OUTCOMES,
    Metrics,
    exposition,
    leniency_label,
)
from gateway.outbound.dispatcher import _STATUS_CLASS_LABEL
from protocol.messages import MM_DELIVERY_STATUSES

DESIGN_METRICS = {
    "mm7gw_messages_accepted": ("counter", {"route"}),
    "mm7gw_submit_requests": ("counter", {"mmsc", "status_class"}),
    "mm7gw_submit_latency_seconds": ("histogram", {"mmsc"}),
    "mm7gw_queue_depth": ("gauge", {"mmsc"}),
    "mm7gw_in_flight": ("gauge", {"mmsc"}),
    "mm7gw_throttle_wait_seconds": ("histogram", {"mmsc"}),
    "mm7gw_retries": ("counter", {"mmsc", "reason"}),
    "mm7gw_delivery_reports": ("counter", {"mmsc", "mm_status"}),
    "mm7gw_inbound_messages": ("counter", {"mmsc"}),
    "mm7gw_webhook_deliveries": ("counter", {"outcome"}),
    "mm7gw_media_adaptations": ("counter", {"result"}),
    "mm7gw_decode_leniencies": ("counter", {"mmsc", "kind"}),
    "mm7gw_build_info": ("gauge", {"version"}),
    "mm7gw_dead_letters": ("gauge", set()),
    "mm7gw_unknown_delivery_reports": ("counter", {"mmsc"}),
    "mm7gw_api_requests": ("counter", {"method", "route", "status"}),
}


def scrape(registry: CollectorRegistry) -> dict[str, Any]:
    body, _ = exposition(registry)
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry, ["alpha", "beta"])


def test_every_design_metric_exists_with_type_labels_and_help(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    # Open-ended label sets (leniency kinds, route templates) have no zero series.
    metrics.leniencies("alpha", ["missing_start"])
    metrics.api_request("GET", "/v1/messages/{id}", 200)
    families = scrape(registry)
    for name, (kind, labels) in DESIGN_METRICS.items():
        family = families[name]
        assert family.type == kind, name
        assert family.documentation.strip(), f"{name} has no help"
        label_sets = {frozenset(s.labels) - {"le"} for s in family.samples}
        assert label_sets == {frozenset(labels)}, name


def test_process_and_runtime_collectors_are_registered(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    families = scrape(registry)
    assert "python_info" in families
    assert "python_gc_objects_collected" in families
    assert "process_resident_memory_bytes" in families


def test_series_are_precreated_at_zero(registry: CollectorRegistry, metrics: Metrics) -> None:
    for mmsc in ("alpha", "beta"):
        for status_class in STATUS_CLASSES:
            assert (
                value(registry, "mm7gw_submit_requests_total", mmsc=mmsc, status_class=status_class)
                == 0
            )
        for reason in RETRY_REASONS:
            assert value(registry, "mm7gw_retries_total", mmsc=mmsc, reason=reason) == 0
        for status in MM_STATUSES:
            assert value(registry, "mm7gw_delivery_reports_total", mmsc=mmsc, mm_status=status) == 0
        assert value(registry, "mm7gw_messages_accepted_total", route=mmsc) == 0
        assert value(registry, "mm7gw_queue_depth", mmsc=mmsc) == 0
        assert value(registry, "mm7gw_in_flight", mmsc=mmsc) == 0
        assert value(registry, "mm7gw_submit_latency_seconds_count", mmsc=mmsc) == 0
        assert value(registry, "mm7gw_inbound_messages_total", mmsc=mmsc) == 0
    for outcome in WEBHOOK_OUTCOMES:
        assert value(registry, "mm7gw_webhook_deliveries_total", outcome=outcome) == 0
    for result in MEDIA_RESULTS:
        assert value(registry, "mm7gw_media_adaptations_total", result=result) == 0
    assert value(registry, "mm7gw_build_info", version=__version__) == 1
    assert value(registry, "mm7gw_dead_letters") == 0


def test_mm_status_enum_is_the_eight_mm7_values_plus_numeric_and_other() -> None:
    assert len(MM_DELIVERY_STATUSES) == 8
    assert set(MM_STATUSES) == {
        *MM_DELIVERY_STATUSES,
        "numeric_success",
        "numeric_failure",
        "other",
    }


def test_helpers_count_what_happened(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.leniencies("alpha", ["missing_start", "missing_start", "boundary_sniffed"])
    metrics.api_request("post", "/v1/messages", 202)
    assert value(registry, "mm7gw_decode_leniencies_total", mmsc="alpha", kind="missing_start") == 2
    assert (
        value(registry, "mm7gw_decode_leniencies_total", mmsc="alpha", kind="boundary_sniffed") == 1
    )
    assert (
        value(
            registry, "mm7gw_api_requests_total", method="POST", route="/v1/messages", status="202"
        )
        == 1
    )


def test_labels_stay_bounded(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.leniencies("alpha", ["Not-A-Name <script>", "x" * 41])
    metrics.leniencies("+12025550101", ["missing_start"])
    metrics.api_request("BREW", "/v1/messages/0123456789abcdef extra", 404)
    metrics.api_request("GET", None, 404)

    assert value(registry, "mm7gw_decode_leniencies_total", mmsc="alpha", kind="other") == 2
    assert (
        value(registry, "mm7gw_decode_leniencies_total", mmsc="unknown", kind="missing_start") == 1
    )
    assert (
        value(registry, "mm7gw_api_requests_total", method="other", route="unmatched", status="404")
        == 1
    )
    assert (
        value(registry, "mm7gw_api_requests_total", method="GET", route="unmatched", status="404")
        == 1
    )
    body = exposition(registry)[0].decode()
    assert "2025550101" not in body
    assert "<script>" not in body


def test_the_labels_production_sets_are_the_precreated_ones() -> None:
    # Callers label the metrics directly; their label sets must be the enums pre-created
    # here, or dashboards see series appear (or never see them).
    assert set(DELIVERY_STATUS_LABELS) == set(MM_STATUSES)
    assert set(_STATUS_CLASS_LABEL.values()) <= set(STATUS_CLASSES)


def test_leniency_label() -> None:
    assert leniency_label("missing_start") == "missing_start"
    assert leniency_label("Missing") == "other"
    assert leniency_label("") == "other"


def test_two_instances_on_separate_registries_do_not_clash() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    Metrics(first, ["a"]).messages_accepted_total.labels(route="a").inc()
    Metrics(second, ["a"])
    assert value(first, "mm7gw_messages_accepted_total", route="a") == 1
    assert value(second, "mm7gw_messages_accepted_total", route="a") == 0


def test_exposition_negotiates_openmetrics(registry: CollectorRegistry, metrics: Metrics) -> None:
    text, text_type = exposition(registry, "text/plain")
    assert text_type.startswith("text/plain; version=0.0.4")
    assert b"# TYPE mm7gw_queue_depth gauge" in text
    om, om_type = exposition(registry, "application/openmetrics-text; version=1.0.0")
    assert om_type.startswith("application/openmetrics-text")
    assert om.rstrip().endswith(b"# EOF")


async def test_metrics_endpoint_scraped_over_http(aiohttp_client: Any) -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, ["mock"])

    async def handler(request: web.Request) -> web.Response:
        body, content_type = exposition(registry, request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/metrics", handler)
    client = await aiohttp_client(app)
    metrics.submit_requests_total.labels(mmsc="mock", status_class="server_error").inc()
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    samples = {
        (s.name, s.labels.get("status_class")): s.value
        for s in families["mm7gw_submit_requests"].samples
        if s.name.endswith("_total")
    }
    assert samples[("mm7gw_submit_requests_total", "server_error")] == 1
    assert samples[("mm7gw_submit_requests_total", "success")] == 0
    response = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
