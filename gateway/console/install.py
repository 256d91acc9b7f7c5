"""The console mounted on the API application, with the collaborators it reads.

The one module of ``console`` that reads the config: the admin keys, the pools' consent
rules and number masking.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from gateway.config.model import GatewayConfig
from gateway.config.secrets import secret_text
from gateway.console.charts import CounterSampler
from gateway.console.context import ConsoleDeps, RouteStatus
from gateway.console.routes import add_console
from gateway.media.store import MediaStorage
from gateway.outbound.content import encode_stored_submit
from gateway.outbound.install import Outbound
from gateway.outbound.request import SubmitRequest
from gateway.store import Batch, MessageRecord, Store


def install_console(
    config: GatewayConfig,
    api_app: web.Application,
    *,
    outbound: Outbound,
    store: Store,
    media_store: MediaStorage,
    registry: CollectorRegistry,
    data_dir: Path,
    wake_outbox: Callable[[], None],
    clock: Callable[[], float],
) -> CounterSampler:
    """Mount ``/console/`` on ``api_app``; the returned sampler is started and stopped
    with the gateway."""
    sampler = CounterSampler(registry, clock=clock)

    def route_status() -> list[RouteStatus]:
        return [
            RouteStatus(
                name=name,
                circuit=worker.circuit,
                configured_tps=worker.route.tps,
                allowed_tps=0.0 if worker.bucket.unlimited else worker.bucket.effective_rate,
                queue_depth=outbound.queue.depth.get(name, 0),
                in_flight=len(worker.in_flight),
            )
            for name, worker in outbound.workers.items()
        ]

    async def reencode(message: MessageRecord, batch: Batch) -> tuple[str, bytes]:
        return await encode_stored_submit(
            outbound.settings[batch.route], outbound.clients[batch.route].encode_async,
            outbound.media_cache, message, batch,
        )  # fmt: skip

    async def submit(api_key: str, request: SubmitRequest) -> MessageRecord:
        record, _ = await outbound.submissions.submit(
            api_key, request, idempotency_key=None, request_hash=None
        )
        return record

    add_console(
        api_app,
        ConsoleDeps(
            store=store,
            admin_keys={
                secret_text(k.key) or "": k.name for k in config.api_keys if k.role == "admin"
            },
            route_status=route_status,
            sampler=sampler,
            reencode=reencode,
            submit=submit,
            media=media_store.get,
            thumbs_dir=data_dir / "thumbs",
            wake_outbox=wake_outbox,
            pools={p.name: p.consent for p in config.pool},
            mask_numbers=config.logging.mask_numbers,
            clock=clock,
        ),
    )
    return sampler
