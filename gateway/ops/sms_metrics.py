"""Metrics of the SMS fallback and its short links (DESIGN.md §13), on the injected registry.

Labels are fixed enums; series are created at zero so alerts see them before the first SMS.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter

FALLBACK_CAUSES: Final = ("no_mms", "rejected", "failed", "expired")
SEND_OUTCOMES: Final = ("accepted", "retry", "failed")
CODINGS: Final = ("gsm7", "ucs2")
#: Kannel's report types (1 delivered, 2 undelivered, 4 queued, 8 SMSC accepted,
#: 16 SMSC refused); anything else is "other".
DLR_TYPES: Final = ("1", "2", "4", "8", "16", "other")
LINK_RESULTS: Final = ("served", "not_found", "rate_limited")


class SmsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.fallbacks_total = Counter(
            "mm7gw_sms_fallbacks_total",
            "Recipients sent on to the SMS fallback (first sendsms attempt), by cause.",
            ["cause"],
            registry=registry,
        )
        self.sends_total = Counter(
            "mm7gw_sms_sends_total",
            "Kannel sendsms calls by outcome: accepted, retry (transient) or failed (gave up).",
            ["outcome"],
            registry=registry,
        )
        self.segments_total = Counter(
            "mm7gw_sms_segments_total",
            "SMS segments handed to Kannel, by coding.",
            ["coding"],
            registry=registry,
        )
        self.reports_total = Counter(
            "mm7gw_sms_reports_total",
            "Kannel delivery reports received on /sms/dlr, by type.",
            ["type"],
            registry=registry,
        )
        self.short_links_total = Counter(
            "mm7gw_short_link_requests_total",
            "GET /m/{code}: served, not found (unknown or expired) or rate limited.",
            ["result"],
            registry=registry,
        )
        for cause in FALLBACK_CAUSES:
            self.fallbacks_total.labels(cause=cause)
        for outcome in SEND_OUTCOMES:
            self.sends_total.labels(outcome=outcome)
        for coding in CODINGS:
            self.segments_total.labels(coding=coding)
        for kind in DLR_TYPES:
            self.reports_total.labels(type=kind)
        for result in LINK_RESULTS:
            self.short_links_total.labels(result=result)

    def report(self, dlr_type: int) -> None:
        label = str(dlr_type)
        self.reports_total.labels(type=label if label in DLR_TYPES else "other").inc()
