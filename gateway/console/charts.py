"""The overview's charts: per-minute samples of the gateway's own counters, kept for an
hour in a ring buffer, rendered server-side as inline SVG (no JS library, no external
service).

A sample is a snapshot of cumulative counters; a chart point is the difference between
two consecutive snapshots, so a restart simply starts a new hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Final

from prometheus_client import CollectorRegistry

SAMPLES_KEPT: Final = 61  # 60 one-minute intervals
OUTCOMES: Final = ("submitted", "rejected", "failed", "expired")


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    submits: float = 0.0
    latency_sum: float = 0.0
    latency_count: float = 0.0
    outcomes: dict[str, float] = field(default_factory=dict)


def snapshot(registry: CollectorRegistry, at: float) -> Snapshot:
    """The cumulative counters the charts need, summed over routes."""
    submits = latency_sum = latency_count = 0.0
    outcomes: dict[str, float] = dict.fromkeys(OUTCOMES, 0.0)
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == "mm7gw_submit_requests_total":
                submits += sample.value
            elif sample.name == "mm7gw_submit_latency_seconds_sum":
                latency_sum += sample.value
            elif sample.name == "mm7gw_submit_latency_seconds_count":
                latency_count += sample.value
            elif sample.name == "mm7gw_submission_outcomes_total":
                outcome = sample.labels.get("outcome", "")
                if outcome in outcomes:
                    outcomes[outcome] += sample.value
    return Snapshot(at, submits, latency_sum, latency_count, outcomes)


@dataclass(frozen=True, slots=True)
class Series:
    title: str
    unit: str
    lines: dict[str, list[tuple[float, float]]]  # name -> [(time, value)]
    end: float = 0.0  # the x axis is the hour up to this time


class CounterSampler:
    """Takes a :class:`Snapshot` every ``interval`` seconds (a task) into a ring buffer."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.interval = interval
        self.clock = clock
        self.samples: deque[Snapshot] = deque(maxlen=SAMPLES_KEPT)
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> Snapshot:
        taken = snapshot(self.registry, self.clock())
        self.samples.append(taken)
        return taken

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="console-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def series(self) -> list[Series]:
        """Rate, latency and outcomes per interval, the newest interval ending now."""
        now = self.clock()
        points = [*self.samples, snapshot(self.registry, now)]
        rate: list[tuple[float, float]] = []
        latency: list[tuple[float, float]] = []
        outcomes: dict[str, list[tuple[float, float]]] = {name: [] for name in OUTCOMES}
        for before, after in itertools.pairwise(points):
            seconds = after.at - before.at
            if seconds <= 0:
                continue
            rate.append((after.at, (after.submits - before.submits) / seconds))
            count = after.latency_count - before.latency_count
            latency.append(
                (after.at, (after.latency_sum - before.latency_sum) / count if count else 0.0)
            )
            for name in OUTCOMES:
                delta = after.outcomes.get(name, 0.0) - before.outcomes.get(name, 0.0)
                outcomes[name].append((after.at, delta))
        return [
            Series("SubmitReq rate", "per second", {"rate": rate}, now),
            Series("SubmitReq latency", "seconds", {"latency": latency}, now),
            Series("Outcomes", "per interval", outcomes, now),
        ]


_COLOURS: Final = ("#0b5cad", "#b3261e", "#7a4f00", "#1f7a3a", "#5b3e96")
_W, _H, _PAD = 320, 120, 36


def svg_chart(series: Series) -> str:
    """One chart as inline SVG with a title and an aria-label; one polyline per line."""
    values = [v for line in series.lines.values() for _, v in line]
    top = max(values, default=0.0) or 1.0
    span = 3600.0
    start = series.end - span
    parts = [
        (
            f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" '
            f'aria-label="{escape(series.title)} ({escape(series.unit)}), last hour">'
        ),
        f"<title>{escape(series.title)}</title>",
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W}" y2="{_H - _PAD}" class="axis"/>',
        f'<line x1="{_PAD}" y1="4" x2="{_PAD}" y2="{_H - _PAD}" class="axis"/>',
        f'<text x="2" y="12" class="tick">{top:.3g}</text>',
        f'<text x="2" y="{_H - _PAD}" class="tick">0</text>',
        f'<text x="{_PAD}" y="{_H - _PAD + 11}" class="tick">-60 min</text>',
        f'<text x="{_W - 4}" y="{_H - _PAD + 11}" class="tick" text-anchor="end">now</text>',
    ]
    legend_x = _PAD
    for index, (name, line) in enumerate(series.lines.items()):
        colour = _COLOURS[index % len(_COLOURS)]
        coords = " ".join(
            f"{_PAD + (t - start) / span * (_W - _PAD - 4):.1f},"
            f"{_H - _PAD - v / top * (_H - _PAD - 8):.1f}"
            for t, v in line
            if t >= start
        )
        if coords and " " not in coords:  # one interval so far: a dot (a line needs two)
            x, y = coords.split(",")
            parts.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{colour}"/>')
        elif coords:
            parts.append(
                f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        parts.append(
            f'<text x="{legend_x}" y="{_H - 8}" class="legend" fill="{colour}">'
            f"{escape(name)}</text>"
        )
        legend_x += 8 * len(name) + 16
    parts.append("</svg>")
    return "".join(parts)
