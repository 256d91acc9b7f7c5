# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""MMSC callbacks (issue 5): delivery reports, inbound MMS, read replies, webhooks, opt-out.

``build_callbacks(gateway)`` wires this package into the app factory: it registers
``POST /mm7[/{mmsc}]`` on the MM7 listener and ``/v1/inbound``, ``/v1/media/{id}``,
``/v1/webhooks/dead-letters`` on the API listener, and returns ``Callbacks``, whose
``start()``/``stop()`` run the webhook outbox worker. Module map:

* ``mm7_server``: the listener (auth, decode, answer after commit);
* ``delivery`` + ``reports``: report intake and the MMStatus → state policy;
* ``inbound``: DeliverReq → media store + inbound tables;
* ``outbox`` + ``signing``: signed webhooks with retries and dead letters;
* ``optout``: STOP/START keywords and the suppression list;
* ``routes``: the REST endpoints; ``sql``: every SQL statement of the package.

Inbound messages belong to the first ``[[api_keys]]`` entry that has a ``callback_url``
(it receives their ``message.inbound`` webhooks); with none, they are visible to every
API key and no webhook is sent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.callbacks import sql
from gateway.callbacks.delivery import ReportService
from gateway.callbacks.inbound import InboundService, InboundSettings
from gateway.callbacks.mm7_server import Handlers, Mm7Listener, Peer
from gateway.callbacks.optout import OptOut, OptOutConfirmations, OptOutPolicy
from gateway.callbacks.outbox import Outbox, WebhookSettings
from gateway.callbacks.routes import CallbackRoutes
from gateway.callbacks.signing import load_signing_key

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.config import GatewayConfig
    from protocol import DeliverReq, DeliveryReportReq, ReadReplyReq

__all__ = ["Callbacks", "build_callbacks"]


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if getter is not None else None


def inbound_owner(config: GatewayConfig) -> tuple[str | None, str | None]:
    """``(api key name, webhook url)`` that inbound messages go to (see module docstring)."""
    for key in config.api_keys:
        if key.callback_url:
            return key.name, key.callback_url
    return None, None


def peers(config: GatewayConfig) -> dict[str, Peer]:
    return {
        m.name: Peer(
            name=m.name,
            version=m.version,
            username=m.inbound_username,
            password=_secret(m.inbound_password),
            allow=tuple(m.inbound_allow_ips),
        )
        for m in config.mmsc
    }


def webhook_settings(config: GatewayConfig) -> WebhookSettings:
    section = config.webhooks
    return WebhookSettings(
        timeout_seconds=section.timeout_seconds,
        max_attempts=section.max_attempts,
        initial_backoff_seconds=section.initial_backoff_seconds,
        max_backoff_seconds=section.max_backoff_seconds,
        max_age_seconds=section.give_up_after_seconds,
        trusted_urls=frozenset(k.callback_url for k in config.api_keys if k.callback_url),
        allow_private_urls=section.allow_private_urls,
    )


class Callbacks:
    """The callback services of one gateway, started and stopped by the app factory."""

    def __init__(self, gateway: Gateway) -> None:
        config = gateway.config
        self.gateway = gateway
        self.config = config
        self.signing_key = b""
        self.secrets = {
            k.name: k.webhook_signing_secret.get_secret_value() for k in config.api_keys
        }
        self.targets = {k.name: k.callback_url for k in config.api_keys if k.callback_url}
        owner = inbound_owner(config)
        section = config.optout
        self.inbound = InboundService(
            gateway.store,
            gateway.media_store,
            InboundSettings(
                owners={m.name: owner for m in config.mmsc},
                policy=OptOutPolicy.build(
                    section.enabled, section.stop_keywords, section.start_keywords
                ),
                media_ttl_seconds=float(config.gateway.media_url_ttl_seconds),
                signing_key=self.key,
            ),
            base_url=self.base_url,
            clock=gateway.clock,
        )
        self.reports = ReportService(gateway.store, gateway.metrics, gateway.clock)
        self.optout = OptOut(gateway.store, {m.name: m.sender for m in config.mmsc})
        self.confirmations = OptOutConfirmations(
            gateway.submissions,
            owner=owner[0] or config.api_keys[0].name,
            texts={"stop": section.confirmation_text, "start": section.start_confirmation_text},
        )
        self.outbox = Outbox(
            gateway.store,
            webhook_settings(config),
            self.secret_for,
            gateway.metrics,
            gateway.clock,
            gateway.rng,
        )
        self.listener = Mm7Listener(
            peers(config),
            Handlers(
                delivery_report=self.on_delivery_report,
                read_reply=self.on_read_reply,
                deliver=self.on_deliver,
            ),
            gateway.metrics,
        )
        self.listener.add_routes(gateway.mm7_app)
        CallbackRoutes(
            gateway.store, gateway.media_store, self.inbound, self.key, gateway.clock
        ).add_routes(gateway.api_app)

    # -- wiring helpers ------------------------------------------------------------------------
    def key(self) -> bytes:
        return self.signing_key

    def secret_for(self, api_key: str | None) -> str:
        """The HMAC secret of an API key's webhooks (unknown keys: the media signing key)."""
        secret = self.secrets.get(api_key or "")
        return secret if secret is not None else self.signing_key.hex()

    def base_url(self) -> str:
        """Where clients reach the API: ``[gateway] public_url`` if set, else the listener."""
        gateway_section = self.config.gateway
        bound = self.gateway.listeners.api
        if "public_url" in gateway_section.model_fields_set or bound is None:
            return gateway_section.public_url
        host, port = bound
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    # -- MM7 handlers (each returns after its commit) ------------------------------------------
    async def on_delivery_report(self, mmsc: str, msg: DeliveryReportReq) -> None:
        result = await self.reports.delivery_report(mmsc, msg)
        if result.outcome == "applied":
            self.outbox.wake()

    async def on_read_reply(self, mmsc: str, msg: ReadReplyReq) -> None:
        result = await self.reports.read_reply(mmsc, msg)
        if result.outcome == "applied":
            self.outbox.wake()

    async def on_deliver(self, mmsc: str, msg: DeliverReq) -> None:
        received = await self.inbound.receive(mmsc, msg)
        if received.created:
            self.gateway.metrics.inbound_messages_total.labels(mmsc=mmsc).inc()
            self.outbox.wake()
            if received.optout is not None:
                await self.confirmations.confirm(mmsc, received)

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        configured = self.config.gateway.signing_key
        path = Path(self.config.gateway.data_dir) / "signing.key"
        self.signing_key = await asyncio.to_thread(load_signing_key, _secret(configured), path)
        targets = dict(self.targets)
        await self.gateway.store.write(lambda conn: sql.sync_webhook_targets(conn, targets))
        self.gateway.submissions.optout = self.optout
        await self.outbox.start()

    async def stop(self) -> None:
        await self.outbox.stop()


def build_callbacks(gateway: Gateway) -> Callbacks:
    return Callbacks(gateway)
