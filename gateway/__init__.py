"""mm7-gateway daemon: REST API, MM7 dispatcher and callbacks, mock MMSC, operations."""

from __future__ import annotations

__version__ = "0.1.0"
