"""Counters of the mock MMSC: the JSON ``/admin/stats`` view and the Prometheus metrics.

``Stats`` is resettable (``POST /admin/reset`` starts a new test phase); ``Metrics`` lives
on the app's own ``CollectorRegistry`` and, as Prometheus expects, never goes backwards.
Outcome labels are status codes (a closed table) or fixed words, never message ids.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Outcomes that are not MM7 status codes.
UNAUTHORIZED = "unauthorized"
HTTP_500 = "http_500"
DROPPED = "dropped"
DELIVERED = "delivered"
RETRIED = "retried"
FAILED = "failed"


class Metrics:
    """Every ``mm7mock_`` metric, on an injected registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "mm7mock_requests_total",
            "Requests on /mm7 by MM7 message type and outcome (status code or transport fault).",
            ["type", "outcome"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "mm7mock_request_duration_seconds",
            "Time from reading a /mm7 request to answering it, injected latency included.",
            registry=registry,
        )
        self.callbacks = Counter(
            "mm7mock_callbacks_total",
            "Callback attempts to the VASP by message type and outcome (delivered/retried/failed).",
            ["type", "outcome"],
            registry=registry,
        )
        self.pending_callbacks = Gauge(
            "mm7mock_pending_callbacks",
            "Delivery reports scheduled or being retried.",
            registry=registry,
        )
        self.requests.labels("SubmitReq", "1000")
        for kind in ("DeliveryReportReq", "DeliverReq", "ReadReplyReq"):
            for outcome in (DELIVERED, RETRIED, FAILED):
                self.callbacks.labels(kind, outcome)


@dataclass(slots=True)
class Stats:
    """Resettable counts for ``GET /admin/stats``."""

    clock: Callable[[], float] = time.monotonic
    window: int = 60
    last: int = 50
    started: float = field(init=False)
    requests: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    callbacks: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    #: whole second (of ``clock``) -> accepted SubmitReq count in that second
    submits: dict[int, int] = field(default_factory=dict)
    recent: collections.deque[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()
        self.recent = collections.deque(maxlen=self.last)

    def reset(self) -> None:
        self.started = self.clock()
        self.requests.clear()
        self.callbacks.clear()
        self.submits.clear()
        self.recent.clear()

    def resize(self, last: int) -> None:
        self.recent = collections.deque(self.recent, maxlen=last)

    def request(self, message_type: str, outcome: str, **details: Any) -> None:
        self.requests[message_type, outcome] += 1
        if message_type == "SubmitReq" and outcome == "1000":
            second = int(self.clock())
            self.submits[second] = self.submits.get(second, 0) + 1
            if len(self.submits) > 2 * self.window:
                for old in [s for s in self.submits if s <= second - self.window]:
                    del self.submits[old]
        self._remember("in", message_type, outcome, details)

    def callback(self, message_type: str, outcome: str, **details: Any) -> None:
        self.callbacks[message_type, outcome] += 1
        if outcome != RETRIED:
            self._remember("out", message_type, outcome, details)

    def _remember(self, direction: str, kind: str, outcome: str, details: dict[str, Any]) -> None:
        entry = {"at": datetime.now(UTC).isoformat(timespec="milliseconds")}
        entry.update(direction=direction, type=kind, outcome=outcome, **details)
        self.recent.append(entry)

    def snapshot(self, pending_callbacks: int) -> dict[str, Any]:
        now = self.clock()
        # The last entry is the current, still filling, second.
        last = int(now)
        per_second = [self.submits.get(s, 0) for s in range(last - self.window + 1, last + 1)]
        span = min(float(self.window), max(now - self.started, 1.0))
        return {
            "uptime_seconds": round(self.clock() - self.started, 3),
            "requests": _nest(self.requests),
            "callbacks": _nest(self.callbacks),
            "pending_callbacks": pending_callbacks,
            "submit_rate": {
                "window_seconds": self.window,
                "per_second": per_second,
                "current": per_second[-1],
                "average": round(sum(per_second) / span, 3),
            },
            "last_messages": list(self.recent),
        }


def _nest(counts: collections.Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    nested: dict[str, dict[str, int]] = {}
    for (kind, outcome), count in sorted(counts.items()):
        nested.setdefault(kind, {})[outcome] = count
    return nested
