"""``mm7-gateway send`` against an in-process gateway and the mock MMSC."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from tests.gateway.support import API_KEY, make_config

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "media"


async def test_send_follows_the_message_to_submitted(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc(dr_delay=3600)
    gw = await run_gateway(make_config(tmp_path, mock.url))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "send", "--to", "+12025550101", "--text", "hi",
        "--media", str(FIXTURES / "tiny.png"), "--api", gw.api, "--api-key", API_KEY,
        "--wait", "5",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await process.communicate()
    lines = out.decode().splitlines()
    assert lines[0].endswith(" queued"), (out, err)
    assert any(" submitted " in line for line in lines), (out, err)
    assert process.returncode == 0


async def test_send_reports_api_errors(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway", "send", "--to", "12345", "--text", "x",
         "--api", gw.api, "--api-key", API_KEY, "--wait", "0"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: HTTP 400 invalid_number:")


def test_send_without_key_is_a_usage_error():
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "send", "--to", "+12025550101", "--text", "x"],
        capture_output=True, text=True, env={"PATH": ""}, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --api-key (or MM7GW_API_KEY) is required"
