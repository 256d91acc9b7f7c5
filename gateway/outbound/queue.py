"""Batches waiting or in flight per route, kept in memory for back-pressure and the gauge.

The store is the truth; this count is loaded from it at start (and after a cancel) and
kept current by the submission service (``add``) and the route workers (``done``), so
the API can refuse work above ``max_queue_depth`` without a query per request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from prometheus_client import Gauge


class QueueGauge:
    """Per-route depth, mirrored into ``mm7gw_queue_depth{mmsc}``."""

    def __init__(self, gauges: Mapping[str, Gauge] | None = None) -> None:
        self.depth: dict[str, int] = {}
        #: Batches of submissions admitted but not yet committed. Counted so that concurrent
        #: requests awaiting the store cannot all pass the bound (``depth`` may be reloaded
        #: from the store meanwhile; reservations live apart so that never drops them).
        self.reserved = 0
        self._gauges = dict(gauges or {})

    @property
    def total(self) -> int:
        return sum(self.depth.values()) + self.reserved

    def reload(self, depths: Mapping[str, int]) -> None:
        """Take the store's counts (at start, and after a cancel changed many at once)."""
        self.depth = dict(depths)
        for route in self._gauges:
            self._publish(route)

    def add(self, route: str, count: int) -> None:
        self.depth[route] = self.depth.get(route, 0) + count
        self._publish(route)

    def reserve(self, count: int, limit: int) -> bool:
        """Admit ``count`` batches if the queue is under ``limit``; False when it is full."""
        if self.total >= limit:
            return False
        self.reserved += count
        return True

    def release(self, count: int) -> None:
        self.reserved = max(0, self.reserved - count)

    def done(self, route: str, count: int = 1) -> None:
        self.depth[route] = max(0, self.depth.get(route, 0) - count)
        self._publish(route)

    def _publish(self, route: str) -> None:
        gauge = self._gauges.get(route)
        if gauge is not None:
            gauge.set(self.depth.get(route, 0))
