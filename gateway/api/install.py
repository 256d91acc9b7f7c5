"""The REST API application built from the config, and the routes of the other flows.

The one module of ``api`` that reads the config: the keys, body limits and read
deadline. Parts of the API that belong to another flow (inbound, consent, the SMS
fallback) are mounted by their own ``add_*`` function, each with its collaborators.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from gateway.api.batches import CAMPAIGNS, MAX_BATCH_RECIPIENTS, add_batch_routes
from gateway.api.body import body_limit_middleware
from gateway.api.inbound import InboundRoutes
from gateway.api.middleware import auth_middleware, errors_middleware, metrics_middleware
from gateway.api.pools import ConsentRoutes
from gateway.api.read_deadline import read_deadline_middleware
from gateway.api.routes import (
    CONTROL,
    MAX_BODY,
    MAX_MEDIA,
    MAX_RECIPIENTS,
    OPENAPI_PATH,
    SUBMISSIONS,
    add_routes,
)
from gateway.api.sms import SmsRoutes
from gateway.config.model import GatewayConfig
from gateway.config.secrets import secret_text
from gateway.media.links import MediaLinks
from gateway.media.short_links import MissLimiter
from gateway.media.store import MediaStorage
from gateway.ops.access_log import enable_access_log
from gateway.ops.metrics import Metrics
from gateway.outbound.campaigns import CampaignService
from gateway.outbound.control import MessageControl
from gateway.outbound.submission import SubmissionService
from gateway.sms.install import SmsFallback
from gateway.store import Store


def build_api_app(
    config: GatewayConfig,
    *,
    metrics: Metrics,
    new_request_id: Callable[[], str],
    submissions: SubmissionService,
    control: MessageControl,
    campaigns: CampaignService,
    other_public_prefixes: tuple[str, ...],
) -> web.Application:
    """The API application with its middlewares, messages and batches.
    ``other_public_prefixes``: paths mounted later that authenticate on their own."""
    section = config.gateway
    keys = {secret_text(k.key) or "": k.name for k in config.api_keys}
    app = web.Application(
        middlewares=[
            metrics_middleware(metrics),
            errors_middleware(new_request_id),
            auth_middleware(  # type: ignore[list-item]
                keys,
                public_prefixes=(
                    "/v1/media/",
                    OPENAPI_PATH,
                    *other_public_prefixes,
                    "/m/",
                    "/sms/dlr",
                ),
            ),
            body_limit_middleware(section.max_body_bytes),
            read_deadline_middleware(config.listen.read_timeout_seconds),
        ],
        client_max_size=section.max_body_bytes,
    )
    app[SUBMISSIONS] = submissions
    app[CONTROL] = control
    app[MAX_RECIPIENTS] = section.max_recipients_per_message
    app[MAX_MEDIA] = section.max_media_parts
    app[MAX_BODY] = section.max_body_bytes
    add_routes(app)
    app[CAMPAIGNS] = campaigns
    app[MAX_BATCH_RECIPIENTS] = section.max_recipients_per_batch
    add_batch_routes(app)
    enable_access_log(app, "api")
    return app


def add_inbound_routes(
    app: web.Application,
    *,
    store: Store,
    media_store: MediaStorage,
    links: MediaLinks,
    pools: frozenset[str],
    clock: Callable[[], float],
) -> None:
    """Inbound MMS, their media and dead letters; the consent records of ``pools``."""
    InboundRoutes(store, media_store, links, clock).add_routes(app)
    ConsentRoutes(store, pools, clock).add_routes(app)


def add_sms_routes(
    app: web.Application,
    *,
    store: Store,
    media_store: MediaStorage,
    sms: SmsFallback,
    clock: Callable[[], float],
) -> None:
    """Kannel's delivery reports and the short links of fallback SMS."""
    SmsRoutes(
        store,
        media_store,
        sms.intake,
        MissLimiter(misses=20, window=60.0, clock=time.monotonic),
        sms.metrics,
        clock,
    ).add_routes(app)
