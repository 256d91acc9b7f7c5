"""``check-config`` reports every problem in one run: single-key bounds and cross-key rules
side by side, including the rules of sections whose other keys are broken."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.config.load import config_from_dict
from gateway.config.rules import min_message_bytes
from gateway.errors import ConfigError

BROKEN = """
[gateway]
max_body_bytes = 10
media_fetch_timeout_seconds = 0.001

[listen]
api = "127.0.0.1:8080"
mm7 = "127.0.0.1:8080"
read_timeout_seconds = 0
mm7_max_body_bytes = 100

[[api_keys]]
name = "k1"
key = "same-key"
callback_url = "ftp://nope"

[[api_keys]]
name = "k2"
key = "same-key"

[[mmsc]]
name = "a"
url = "http://127.0.0.1:9090/mm7"
tps = 5.0
burst = 0.5
max_in_flight = 0
max_message_bytes = 10
timeout_seconds = 0
inbound_username = "u"
[mmsc.retry]
jitter = 3.0
initial_backoff_seconds = 10.0
max_backoff_seconds = 1.0

[[mmsc]]
name = "a"
url = "http://127.0.0.1:9090/mm7"
max_recipients_per_submit = 20
max_message_bytes = 3000

[webhooks]
timeout_seconds = 0
initial_backoff_seconds = 60.0
max_backoff_seconds = 5.0

[optout]
stop_keywords = ["STOP", "end"]
start_keywords = ["START", "END "]
"""

EXPECTED = {
    # single keys
    "gateway.max_body_bytes": "must be >= 1024",
    "gateway.media_fetch_timeout_seconds": "must be >= 0.1",
    "listen.read_timeout_seconds": "must be >= 0.1",
    "listen.mm7_max_body_bytes": "must be >= 1048576",
    "mmsc[0].max_in_flight": "must be >= 1",
    "mmsc[0].timeout_seconds": "must be >= 0.1",
    "mmsc[0].retry.jitter": "must be <= 1",
    "webhooks.timeout_seconds": "must be >= 0.1",
    "api_keys[0].callback_url": "must be an http:// or https:// URL with a host",
    # cross keys, in sections that also have single-key problems
    "listen.mm7": "same address as listen.api",
    "mmsc[0].burst": "must be >= 1 when tps > 0",
    "mmsc[0].max_message_bytes": (
        "must be >= 2560: the SubmitReq envelope for 1 recipient(s) takes 2048 bytes, "
        "plus 512 for a short text"
    ),
    "mmsc[0].inbound_password": "required: inbound_username and inbound_password go together",
    "mmsc[0].retry.max_backoff_seconds": "must be >= initial_backoff_seconds",
    "mmsc[1].name": "duplicate 'a': already used by mmsc[0]",
    "api_keys[1].key": "duplicate: already used by api_keys[0]",
    "mmsc[1].max_message_bytes": (
        "must be >= 3776: the SubmitReq envelope for 20 recipient(s) takes 3264 bytes, "
        "plus 512 for a short text"
    ),
    "webhooks.max_backoff_seconds": "must be >= initial_backoff_seconds",
    "optout.start_keywords": "END also in stop_keywords",
}


def test_check_config_reports_single_and_cross_key_problems_in_one_run(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    prefix = f"{path}: "
    assert all(line.startswith(prefix) for line in lines), lines
    found = dict(line.removeprefix(prefix).split(": ", 1) for line in lines)
    assert found == EXPECTED
    assert len(lines) == len(EXPECTED)  # each problem once
    assert "same-key" not in done.stderr  # secrets are never shown


def _route(**keys: Any) -> dict[str, Any]:
    return {"mmsc": [{"name": "a", "url": "http://127.0.0.1:9090/mm7", **keys}]}


def _problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, environ={})
    return {p.key_path: p.message for p in info.value.problems}


def test_cross_key_rules_alone_are_reported_by_the_model() -> None:
    """With every single key valid the models' own validators find the same problems."""
    found = _problems(
        {
            **_route(tps=2.0, burst=0.5, max_message_bytes=100),
            "listen": {"api": "0.0.0.0:8080", "ops": "127.0.0.1:8080"},
            "webhooks": {"initial_backoff_seconds": 9.0, "max_backoff_seconds": 3.0},
        }
    )
    assert found == {
        "mmsc[0].burst": "must be >= 1 when tps > 0",
        "mmsc[0].max_message_bytes": EXPECTED["mmsc[0].max_message_bytes"],
        "listen.ops": "same address as listen.api",
        "webhooks.max_backoff_seconds": "must be >= initial_backoff_seconds",
    }


@pytest.mark.parametrize(
    "keys",
    [
        {"tps": 0.0, "burst": 0.5},  # unlimited route: the bucket is never consulted
        {"max_message_bytes": min_message_bytes(1)},
        {"max_recipients_per_submit": 10, "max_message_bytes": min_message_bytes(10)},
    ],
)
def test_values_at_the_bounds_are_accepted(keys: dict[str, Any]) -> None:
    config = config_from_dict(
        {**_route(**keys), "listen": {"api": "127.0.0.1:0", "mm7": "127.0.0.1:0"}}, environ={}
    )
    assert config.mmsc[0].name == "a"
