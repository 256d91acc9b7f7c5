"""Membership: this instance announces itself in the store and counts its live peers.

Every ``heartbeat_seconds`` the instance writes its heartbeat and sets
``mm7gw_cluster_instances`` to the instances heard from within three periods. With the
embedded SQLite store the cluster is this process alone. What actually protects work
across instances is the leases on claimed batches; membership is what operators watch.

On a shared store each beat also runs ``refresh`` (``app.py`` reloads the queue gauge
there): a peer finishes batches this instance accepted and the other way round, so
counts kept in memory drift unless they are re-read from the store now and then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog

from gateway.errors import StoreError

if TYPE_CHECKING:
    from gateway.ops.metrics import Metrics
    from gateway.store import Store

log = structlog.get_logger("gateway.ops.cluster")

#: Heartbeat periods of silence after which a peer counts as gone.
MISSED_HEARTBEATS = 3


class Membership:
    def __init__(
        self,
        store: Store,
        *,
        instance_id: str,
        heartbeat_seconds: float,
        metrics: Metrics,
        clock: Callable[[], float],
        refresh: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.refresh = refresh
        self.instance_id = instance_id
        self.heartbeat_seconds = heartbeat_seconds
        self.metrics = metrics
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> int:
        """Announce this instance once; returns the live instances seen."""
        now = self.clock()
        await self.store.heartbeat(self.instance_id, now)
        live = await self.store.live_instances(now - MISSED_HEARTBEATS * self.heartbeat_seconds)
        self.metrics.cluster_instances.set(live)
        if self.refresh is not None:
            await self.refresh()
        return live

    async def _loop(self) -> None:
        while True:
            try:
                await self.beat()
            except StoreError as exc:
                log.warning("heartbeat failed", error=str(exc))
            await asyncio.sleep(self.heartbeat_seconds)

    async def start(self) -> None:
        await self.beat()
        self._task = asyncio.create_task(self._loop(), name="cluster-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
            # Peers count us out now rather than after MISSED_HEARTBEATS; a failure here
            # only means they notice later.
            try:
                await self.store.leave(self.instance_id)
            except StoreError as exc:
                log.warning("leaving the cluster failed", error=str(exc))
