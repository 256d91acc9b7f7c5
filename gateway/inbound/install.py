"""The inbound flow built from the config: who may call back, keywords, the listener.

The one module of ``inbound`` that reads the config. Outbound parts arrive as callables
(``inbound`` and ``outbound`` meet only through the store and what the app hands in).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from gateway.config.model import GatewayConfig
from gateway.config.pools import DEFAULT_HELP_KEYWORDS
from gateway.config.secrets import secret_text
from gateway.inbound.deliver import InboundService, InboundSettings
from gateway.inbound.delivery import ReportService
from gateway.inbound.handlers import CallbackHandlers
from gateway.inbound.keywords import (
    OptOutConfirmations,
    OptOutPolicy,
    PoolKeywordPolicy,
    PoolKeywords,
    Reply,
    normalise_keyword,
)
from gateway.inbound.mm7_server import Mm7Listener, Peer
from gateway.media.links import MediaLinks
from gateway.media.store import MediaStorage
from gateway.ops.metrics import Metrics
from gateway.store import NewMessage, Store


def pool_keywords(config: GatewayConfig) -> PoolKeywords:
    """Each pool's keywords (unset: the ``[optout]`` STOP/START lists, HELP and INFO)."""

    def words(given: tuple[str, ...] | None, default: tuple[str, ...]) -> frozenset[str]:
        return frozenset(normalise_keyword(w) for w in (given or default))

    optout = config.optout
    return PoolKeywords(
        (
            [s.address for s in p.sender],
            PoolKeywordPolicy(
                pool=p.name,
                stop=words(p.stop_keywords, optout.stop_keywords),
                start=words(p.start_keywords, optout.start_keywords),
                help=words(p.help_keywords, DEFAULT_HELP_KEYWORDS),
                texts={"stop": p.stop_text, "start": p.start_text, "help": p.help_text},
            ),
        )
        for p in config.pool
    )


def peers(config: GatewayConfig) -> dict[str, Peer]:
    """Who may call back on each route, and how they authenticate."""
    return {
        m.name: Peer(
            name=m.name,
            version=m.version,
            username=m.inbound_username,
            password=secret_text(m.inbound_password),
            allow=tuple(m.inbound_allow_ips),
        )
        for m in config.mmsc
    }


def inbound_owner(config: GatewayConfig) -> tuple[str | None, str | None]:
    """``(api key name, webhook url)`` that inbound messages go to: the first API key with
    a ``callback_url``; with none, inbound messages are visible to every key and no
    webhook is sent."""
    for key in config.api_keys:
        if key.callback_url:
            return key.name, key.callback_url
    return None, None


@dataclass(frozen=True, slots=True)
class Inbound:
    """The MM7 listener and the service that stores inbound MMS."""

    service: InboundService
    listener: Mm7Listener


def install_inbound(
    config: GatewayConfig,
    mm7_app: web.Application,
    *,
    store: Store,
    media_store: MediaStorage,
    links: MediaLinks,
    metrics: Metrics,
    clock: Callable[[], float],
    build_reply: Callable[[str, Reply], NewMessage],
    reply_committed: Callable[[NewMessage], None],
    events_added: Callable[[], None],
) -> Inbound:
    """Build the inbound flow and mount the MM7 listener on ``mm7_app``.

    ``build_reply(api_key, reply)`` makes the record of a keyword's reply, owned by the
    inbound owner's key (else the first key); ``reply_committed`` runs after its commit,
    ``events_added`` after a commit that added webhook events.
    """
    owner = inbound_owner(config)
    reply_owner = owner[0] or config.api_keys[0].name
    section = config.optout
    service = InboundService(
        store,
        media_store,
        InboundSettings(
            owners={m.name: owner for m in config.mmsc},
            policy=OptOutPolicy.build(
                section.enabled, section.stop_keywords, section.start_keywords
            ),
        ),
        links,
        clock,
        confirmations=OptOutConfirmations(
            lambda reply: build_reply(reply_owner, reply),
            texts={"stop": section.confirmation_text, "start": section.start_confirmation_text},
        ),
        pool_keywords=pool_keywords(config),
    )
    handlers = CallbackHandlers(
        reports=ReportService(store, metrics, clock),
        inbound=service,
        metrics=metrics,
        events_added=events_added,
        reply_committed=reply_committed,
    )
    listener = Mm7Listener(
        peers(config),
        handlers.as_handlers(),
        metrics,
        max_body_bytes=config.listen.mm7_max_body_bytes,
    )
    listener.add_routes(mm7_app)
    return Inbound(service=service, listener=listener)
