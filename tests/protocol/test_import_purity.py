"""``import protocol`` stays sans-IO: no event loop, HTTP, logging, metrics, imaging, DB or zeep."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = (
    "asyncio",
    "aiohttp",
    "requests",
    "urllib3",
    "gateway",
    "structlog",
    "prometheus_client",
    "PIL",
    "sqlite3",
    "zeep",
)

PROBE = """
import json, sys
import protocol
import protocol.capture
from protocol import decode, encode, SubmitRsp
encode(SubmitRsp(transaction_id="t", message_id="m"))
print(json.dumps(sorted(sys.modules)))
"""


def test_import_protocol_loads_nothing_forbidden() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    modules = json.loads(result.stdout)
    loaded = {name for name in modules if name.split(".")[0] in FORBIDDEN}
    assert loaded == set()
    assert "protocol.encoder" in modules
    assert "lxml.etree" in modules
