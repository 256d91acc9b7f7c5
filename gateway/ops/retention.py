"""Retention: purge what is final and older than ``[store] retention_days``, and media
nothing kept refers to any more.

Runs every ``interval`` seconds. Each pass deletes in chunks of ``chunk`` rows per kind,
yielding to the event loop between chunks, so a large backlog (the first run after
enabling retention) never stalls the queue's store operations. Media files are kept at
least as long as the media URLs handed out for them can still be used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from gateway.errors import StoreError
from gateway.ops.metrics import RETENTION_KINDS

if TYPE_CHECKING:
    from gateway.media.store import MediaStorage
    from gateway.ops.metrics import Metrics
    from gateway.store import Store

log = structlog.get_logger("gateway.ops.retention")

DAY_SECONDS = 86_400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionSettings:
    retention_seconds: float
    #: Lifetime of signed media URLs: media stays at least this long after its last use.
    media_url_ttl_seconds: float
    #: Slack for the media store's coarse refresh of file times.
    touch_slack_seconds: float
    interval_seconds: float = 300.0
    chunk: int = 500


class Retention:
    def __init__(
        self,
        store: Store,
        media: MediaStorage,
        settings: RetentionSettings,
        metrics: Metrics,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.media = media
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> dict[str, int]:
        """One full pass; returns what it deleted by kind."""
        now = self.clock()
        cutoff = now - self.settings.retention_seconds
        totals = dict.fromkeys(RETENTION_KINDS, 0)
        while True:
            counts = await self.store.purge_expired(cutoff, self.settings.chunk)
            for kind, count in counts.items():
                totals[kind] += count
            if not any(counts.values()):
                break
            await asyncio.sleep(0)  # let queued store work in between chunks
        keep = max(self.settings.retention_seconds, self.settings.media_url_ttl_seconds)
        media_cutoff = now - keep - self.settings.touch_slack_seconds
        while True:
            old = await asyncio.to_thread(self.media.old_files, media_cutoff, self.settings.chunk)
            if not old:
                break
            in_use = await self.store.media_in_use(old, media_cutoff)
            unused = [d for d in old if d not in in_use]
            deleted = 0
            for digest in unused:
                deleted += await asyncio.to_thread(self.media.delete, digest, media_cutoff)
            totals["media"] += deleted
            if len(old) < self.settings.chunk or not deleted:
                break  # what is left is in use (or was stored again meanwhile)
        for kind, count in totals.items():
            if count:
                self.metrics.retention_purged_total.labels(kind=kind).inc(count)
        if any(totals.values()):
            log.info("retention purged", **totals)
        return totals

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except (StoreError, OSError) as exc:
                log.warning("retention pass failed; next pass as scheduled", error=str(exc))
            await asyncio.sleep(self.settings.interval_seconds)

    def start(self) -> None:
        if self.settings.retention_seconds > 0 and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
