"""The bundled mock MMSC (``mm7-gateway mock-mmsc``): a fault-injecting MMS Relay/Server.

It speaks MM7 through ``protocol`` only and imports nothing else from ``gateway``, so
the gateway's integration tests exercise the gateway against an independent peer.
``create_app(settings)`` builds the aiohttp application; ``MockSettings`` configures it.
"""

from __future__ import annotations

from gateway.mock_mmsc.app import create_app
from gateway.mock_mmsc.config import MockConfigError, MockSettings

__all__ = ["MockConfigError", "MockSettings", "create_app"]
