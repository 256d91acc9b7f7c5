"""The webhook outbox built from ``[webhooks]`` and the API keys' callback settings.

The one module of ``webhooks`` that reads the config.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from typing import Any

from gateway.config.model import GatewayConfig
from gateway.media.links import MediaLinks
from gateway.ops.metrics import Metrics
from gateway.store import Store
from gateway.webhooks.outbox import Outbox, WebhookSettings


def webhook_settings(config: GatewayConfig) -> WebhookSettings:
    section = config.webhooks
    return WebhookSettings(
        timeout_seconds=section.timeout_seconds,
        max_attempts=section.max_attempts,
        initial_backoff_seconds=section.initial_backoff_seconds,
        max_backoff_seconds=section.max_backoff_seconds,
        max_age_seconds=section.give_up_after_seconds,
        per_destination_concurrency=section.per_destination_concurrency,
        trusted_urls=frozenset(k.callback_url for k in config.api_keys if k.callback_url),
        allow_private_urls=section.allow_private_urls,
    )


def install_outbox(
    config: GatewayConfig,
    *,
    store: Store,
    metrics: Metrics,
    clock: Callable[[], float],
    rng: random.Random,
    links: MediaLinks,
    spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], asyncio.Task[None]],
) -> Outbox:
    """The outbox signs each key's webhooks with that key's secret, those of unknown keys
    with the media signing key (loaded at start)."""
    secrets = {k.name: k.webhook_signing_secret.get_secret_value() for k in config.api_keys}

    def secret_of(api_key: str | None) -> str:
        secret = secrets.get(api_key or "")
        return secret if secret is not None else links.key.hex()

    return Outbox(store, webhook_settings(config), secret_of, metrics, clock, rng, spawn=spawn)
