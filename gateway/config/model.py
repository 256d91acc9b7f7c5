# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""The gateway's configuration model: every key, its type, default, bounds and meaning.

Frozen pydantic models mirror the TOML sections of ``config/gateway.toml`` one to one
(``[gateway]``, ``[listen]``, ``[logging]``, ``[[api_keys]]``, ``[[mmsc]]`` with
``[mmsc.retry]``, ``[webhooks]``, ``[optout]``, ``[[pool]]``). Unknown keys are rejected
(``extra="forbid"``) so a misspelt key never silently falls back to its default. Numbers
and booleans are strict (TOML has real types; ``"10"`` for a number is a mistake worth
reporting). Secrets are ``SecretStr`` (they print as ``**********``) and may be written
``env:VAR`` to be read from the environment given to validation.

This module holds the whole configuration and the checks across sections; the sections
are in ``mmsc`` (routes), ``pools`` and ``sections`` (the rest), their value types in
``values``. Reading files and turning validation errors into key-path messages is
``gateway.config.load``'s job; this package only says what a valid configuration is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from pydantic import Field, model_validator

from gateway.config.callbacks import open_callback_problems
from gateway.config.mmsc import MmscConfig
from gateway.config.pools import PoolConfig, pool_problems
from gateway.config.sections import (
    ApiKeyConfig,
    ClusterSection,
    GatewaySection,
    ListenSection,
    LoggingSection,
    OptoutSection,
    SmsSection,
    StoreSection,
    WebhooksSection,
)
from gateway.config.values import ENVIRON_CONTEXT_KEY, CrossCheckError, Section
from gateway.errors import ConfigProblem


def duplicate_problems(
    section: str, field: str, values: Sequence[object], *, show: bool = True
) -> list[ConfigProblem]:
    """One problem per repeated value: ``mmsc[2].name: duplicate of mmsc[0].name``."""
    first: dict[object, int] = {}
    problems: list[ConfigProblem] = []
    for index, value in enumerate(values):
        if value is None:
            continue
        if value in first:
            shown = f" {value!r}" if show else ""
            problems.append(
                ConfigProblem(
                    f"{section}[{index}].{field}",
                    f"duplicate{shown}: already used by {section}[{first[value]}]",
                )
            )
        else:
            first[value] = index
    return problems


def default_route_problems(flags: Sequence[object]) -> list[ConfigProblem]:
    """At most one ``[[mmsc]]`` may say ``route_default = true``."""
    marked = [i for i, flag in enumerate(flags) if flag is True]
    return [
        ConfigProblem(
            f"mmsc[{i}].route_default", f"only one route may be the default (mmsc[{marked[0]}] is)"
        )
        for i in marked[1:]
    ]


def shared_store_problems(
    store: StoreSection, cluster: ClusterSection, gateway: GatewaySection
) -> list[ConfigProblem]:
    """A shared store needs one media-link key for all instances and leases that heartbeats
    renew in time."""
    if store.url is None:
        return []
    problems = []
    if gateway.signing_key is None:
        # A key generated per data_dir would make one instance's media links fail on
        # every other instance.
        problems.append(
            ConfigProblem(
                "gateway.signing_key",
                "required with a shared store (store.url): every instance must sign media "
                "links with the same key",
            )
        )
    if cluster.lease_seconds < 2 * cluster.heartbeat_seconds:
        problems.append(
            ConfigProblem(
                "cluster.lease_seconds",
                "must be at least twice cluster.heartbeat_seconds (heartbeats renew leases)",
            )
        )
    return problems


class GatewayConfig(Section):
    """The whole validated configuration of one gateway process."""

    gateway: GatewaySection = GatewaySection()
    listen: ListenSection = ListenSection()
    store: StoreSection = StoreSection()
    cluster: ClusterSection = ClusterSection()
    logging: LoggingSection = LoggingSection()
    api_keys: tuple[ApiKeyConfig, ...] = ()
    mmsc: tuple[MmscConfig, ...] = Field(min_length=1)
    webhooks: WebhooksSection = WebhooksSection()
    optout: OptoutSection = OptoutSection()
    sms: SmsSection | None = None
    #: ``[[pool]]``: sender pools with consent (``gateway.config.pools``).
    pool: tuple[PoolConfig, ...] = ()

    @model_validator(mode="after")
    def _cross_checks(self) -> Self:
        problems = [
            ConfigProblem(f"mmsc[{i}].fallback", 'fallback = "sms" needs an [sms] section')
            for i, m in enumerate(self.mmsc)
            if m.fallback == "sms" and self.sms is None
        ]
        problems += [
            *duplicate_problems("mmsc", "name", [m.name for m in self.mmsc]),
            *default_route_problems([m.route_default for m in self.mmsc]),
            *duplicate_problems("api_keys", "name", [k.name for k in self.api_keys]),
            *duplicate_problems(
                "api_keys", "key", [k.key.get_secret_value() for k in self.api_keys], show=False
            ),
            *open_callback_problems(self.listen, self.mmsc),
            *pool_problems(self.pool),
            *shared_store_problems(self.store, self.cluster, self.gateway),
        ]
        if problems:
            raise CrossCheckError(problems)
        return self

    def route(self, name: str) -> MmscConfig:
        """The ``[[mmsc]]`` entry called ``name``.

        Raises:
            KeyError: no route has that name.
        """
        for mmsc in self.mmsc:
            if mmsc.name == name:
                return mmsc
        raise KeyError(name)

    @classmethod
    def default_for_demo(
        cls,
        data_dir: Path | str,
        mmsc_url: str,
        *,
        api_key: str = "demo-key",
        mmsc: Mapping[str, Any] | None = None,
        **sections: Mapping[str, Any],
    ) -> GatewayConfig:
        """A valid configuration built in code: one route ``mock`` to ``mmsc_url``.

        Args:
            data_dir: where the store and media live.
            mmsc_url: the MMSC's MM7 endpoint (the bundled mock's ``/mm7``).
            api_key: the single API key (named ``demo``).
            mmsc: overrides for the ``[[mmsc]]`` entry (``tps``, ``max_in_flight``, ...).
            sections: overrides merged into the other sections, e.g.
                ``logging={"level": "debug"}``.
        """
        route: dict[str, Any] = {
            "name": "mock",
            "url": mmsc_url,
            "vasp_id": "demo-vasp",
            "vas_id": "demo",
            "sender": "12345",
            "tps": 0.0,
            "max_in_flight": 16,
            "route_default": True,
            "inbound_username": "mmsc",
            "inbound_password": "mmsc-secret",
        }
        route.update(mmsc or {})
        address = "127.0.0.1:0"  # free ports; pass listen={...} to choose
        data: dict[str, Any] = {
            "gateway": {"data_dir": str(data_dir)},
            "listen": {"api": address, "mm7": address, "ops": address},
            "api_keys": [{"name": "demo", "key": api_key}],
            "mmsc": [route],
        }
        for section, values in sections.items():
            data[section] = {**data.get(section, {}), **values}
        return cls.model_validate(data, context={ENVIRON_CONTEXT_KEY: {}})
