"""End to end: ``serve`` as a subprocess, SIGKILLed mid-stream, restarted: nothing is lost."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.helpers import free_port, start, stop, wait_http

API_KEY = "e2e-key-0123456789"


def gateway_toml(data_dir: Path, mock_port: int, ports: dict[str, int]) -> str:
    return f"""
[gateway]
data_dir = "{data_dir}"

[listen]
api = "127.0.0.1:{ports["api"]}"
mm7 = "127.0.0.1:{ports["mm7"]}"
ops = "127.0.0.1:{ports["ops"]}"

[logging]
level = "warning"
format = "json"

[[api_keys]]
name = "e2e"
key = "{API_KEY}"

[[mmsc]]
name = "mock"
url = "http://127.0.0.1:{mock_port}/mm7"
sender = "12345"
tps = 0.0
max_in_flight = 8
[mmsc.retry]
initial_backoff_seconds = 0.05
max_backoff_seconds = 0.5
"""


def recorded_transactions(record_dir: Path) -> list[str]:
    """TransactionIDs of every SubmitReq the mock answered with success."""
    from protocol import SubmitReq, decode

    seen = []
    for path in sorted(record_dir.iterdir()):
        raw = path.read_bytes()
        if b"SubmitReq" not in raw:
            continue
        head, _, body = raw.partition(b"\r\n\r\n")
        content_type = None
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-type":
                content_type = value.strip()
        try:
            message = decode(body, content_type)
        except Exception:
            continue
        if isinstance(message, SubmitReq) and message.transaction_id:
            seen.append(message.transaction_id)
    return seen


@pytest.mark.slow
async def test_kill9_loses_no_accepted_message(tmp_path: Path) -> None:
    mock_port = free_port()
    record = tmp_path / "record"
    record.mkdir()
    logs = tmp_path / "logs.txt"
    mock = start(
        [
            "mock-mmsc",
            "--listen",
            f"127.0.0.1:{mock_port}",
            "--record",
            str(record),
            "--dr-delay",
            "3600",
        ],
        logs,
    )
    ports = {name: free_port() for name in ("api", "mm7", "ops")}
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path / "data", mock_port, ports))
    api = f"http://127.0.0.1:{ports['api']}"
    accepted: list[str] = []
    refused = 0
    gateway = start(["serve", "--config", str(config)], logs)
    try:
        wait_http(f"http://127.0.0.1:{mock_port}/admin/stats")
        wait_http(f"http://127.0.0.1:{ports['ops']}/healthz")

        async def send_all() -> None:
            nonlocal refused
            headers = {"Authorization": f"Bearer {API_KEY}"}
            async with aiohttp.ClientSession() as session:
                sem = asyncio.Semaphore(16)

                async def one(i: int) -> None:
                    nonlocal refused
                    async with sem:
                        try:
                            async with session.post(
                                api + "/v1/messages",
                                json={"to": "+12025550101", "text": f"n{i}"},
                                headers=headers,
                            ) as r:
                                if r.status == 202:
                                    accepted.append((await r.json())["id"])
                                else:
                                    refused += 1
                        except (aiohttp.ClientError, OSError):
                            refused += 1

                await asyncio.gather(*(one(i) for i in range(500)))

        sender = asyncio.create_task(send_all())
        while len(accepted) < 200:
            await asyncio.sleep(0.01)
        gateway.send_signal(signal.SIGKILL)
        gateway.wait()
        await sender
        gateway = start(["serve", "--config", str(config)], logs)
        wait_http(f"http://127.0.0.1:{ports['ops']}/healthz")
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                pending = 0
                for message_id in accepted:
                    async with session.get(f"{api}/v1/messages/{message_id}", headers=headers) as r:
                        assert r.status == 200, f"accepted message {message_id} is gone"
                        if (await r.json())["status"] != "submitted":
                            pending += 1
                if pending == 0:
                    break
                await asyncio.sleep(0.1)
            assert pending == 0
        transactions = recorded_transactions(record)
        submitted_ids = {t.rsplit("-", 1)[0] for t in transactions}
        missing = set(accepted) - submitted_ids
        duplicates = len(transactions) - len(set(transactions))
        print(
            json.dumps(
                {
                    "accepted": len(accepted),
                    "refused": refused,
                    "submitted": len(set(transactions)),
                    "duplicates": duplicates,
                }
            )
        )
        assert not missing
        assert 200 <= len(accepted) <= 500
    finally:
        stop(gateway)
        stop(mock)
