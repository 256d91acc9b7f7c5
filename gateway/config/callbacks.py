# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Safe defaults for MMSC callbacks: which routes would accept them from anyone.

A route's MM7 callbacks (delivery reports, inbound MMS, STOP keywords) change messages
and the opt-out list, so on a listener other hosts can reach each route must prove who
calls: HTTP Basic credentials, a source allow-list, or the listener's client
certificates. A route that really wants open callbacks says ``inbound_auth = "none"``.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from gateway.errors import ConfigProblem

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.config.mmsc import MmscConfig
    from gateway.config.sections import ListenSection


def is_loopback(host: str) -> bool:
    """Whether a listener bound to ``host`` is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # another name: it may resolve to anything


def open_callback_problems(
    listen: ListenSection, routes: Sequence[MmscConfig]
) -> list[ConfigProblem]:
    """Routes that would accept forged reports, inbound MMS and STOPs from anyone.

    On a non-loopback MM7 listener every route needs credentials, an allow-list or the
    listener's client certificates (mTLS), unless it says ``inbound_auth = "none"``.
    """
    if is_loopback(listen.mm7.host) or listen.mm7_client_ca_file is not None:
        return []
    return [
        ConfigProblem(
            f"mmsc[{index}]",
            f"callbacks are unauthenticated on a non-loopback MM7 listener ({listen.mm7}): "
            "set inbound_username and inbound_password, inbound_allow_ips or "
            'listen.mm7_client_ca_file, or inbound_auth = "none" to accept them from anyone',
        )
        for index, route in enumerate(routes)
        if route.inbound_auth is None and not route.callbacks_authenticated
    ]
