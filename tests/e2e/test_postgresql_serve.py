"""End to end on PostgreSQL: a real ``serve`` process with ``[store] url`` (given as
``env:VAR``) sends through the bundled mock MMSC; its delivery reports come back; the
state and the media are in the database, nothing in ``data_dir``; ``migrate`` first."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import psycopg

from tests.e2e.helpers import free_port, start, stop, wait_http
from tests.gateway.support import jpeg_bytes

API_KEY = "e2e-key-0123456789"


def gateway_toml(data_dir: Path, mock_port: int, ports: dict[str, int]) -> str:
    return f"""
[gateway]
data_dir = "{data_dir}"
signing_key = "e2e-signing-key-0123456789abcdef"

[listen]
api = "127.0.0.1:{ports["api"]}"
mm7 = "127.0.0.1:{ports["mm7"]}"
ops = "127.0.0.1:{ports["ops"]}"

[store]
url = "env:MM7GW_E2E_STORE_URL"
pool_size = 4

[cluster]
instance_id = "gw-e2e"

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
max_in_flight = 4
inbound_auth = "none"
"""


async def test_serve_on_postgresql_sends_through_the_mock(tmp_path: Path, pg_url: str) -> None:
    from tests.gateway import pg_support

    pg_support.truncate_all(pg_url)
    ports = {name: free_port() for name in ("api", "mm7", "ops")}
    mock_port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path / "data", mock_port, ports))
    env = {**os.environ, "MM7GW_E2E_STORE_URL": pg_url}
    os.environ["MM7GW_E2E_STORE_URL"] = pg_url  # start() passes os.environ on
    migrated = subprocess.run(
        [sys.executable, "-m", "gateway", "migrate", "--config", str(config)],
        capture_output=True, text=True, env=env, check=False, timeout=60,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.startswith("ok: schema version ") and "(postgresql)" in migrated.stdout
    logs = tmp_path / "logs.txt"
    mock = start(
        ["mock-mmsc", "--listen", f"127.0.0.1:{mock_port}", "--dr-delay", "0.05",
         "--vasp-url", f"http://127.0.0.1:{ports['mm7']}/mm7/mock"],
        logs,
    )  # fmt: skip
    gateway = start(["serve", "--config", str(config)], logs)
    api = f"http://127.0.0.1:{ports['api']}"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    try:
        wait_http(f"http://127.0.0.1:{mock_port}/admin/stats")
        wait_http(f"http://127.0.0.1:{ports['ops']}/healthz")
        image = base64.b64encode(jpeg_bytes()).decode()
        async with aiohttp.ClientSession() as session:
            ids = []
            for i in range(5):
                body = {"to": "+12025550101", "text": f"n{i}",
                        "media": [{"content_type": "image/jpeg", "data": image}]}  # fmt: skip
                async with session.post(api + "/v1/messages", json=body, headers=headers) as r:
                    assert r.status == 202, await r.text()
                    ids.append((await r.json())["id"])
            statuses: dict[str, str] = {}
            for _ in range(300):
                for message_id in ids:
                    async with session.get(f"{api}/v1/messages/{message_id}", headers=headers) as r:
                        statuses[message_id] = (await r.json())["status"]
                if all(s == "delivered" for s in statuses.values()):
                    break
                await asyncio.sleep(0.1)
            assert set(statuses.values()) == {"delivered"}, (statuses, logs.read_text()[-2000:])
            async with session.get(f"http://127.0.0.1:{ports['ops']}/metrics") as r:
                assert "mm7gw_cluster_instances 1.0" in await r.text()
    finally:
        stop(gateway)
        stop(mock)
        os.environ.pop("MM7GW_E2E_STORE_URL", None)
    assert gateway.returncode == 0, logs.read_text()[-2000:]
    # Everything is in PostgreSQL: no SQLite file or media files under data_dir.
    assert not (tmp_path / "data" / "gateway.sqlite3").exists()
    assert not (tmp_path / "data" / "media").exists()
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT m.status, b.claimed_by, b.transaction_id FROM messages m "
            "JOIN batches b ON b.message_id = m.id ORDER BY m.id"
        ).fetchall()
        assert sorted(rows) == sorted(("delivered", None, f"{i}-1") for i in ids)
        assert conn.execute("SELECT COUNT(*) FROM media").fetchone()[0] >= 1
        outcomes = conn.execute("SELECT DISTINCT outcome FROM delivery_reports").fetchall()
        assert outcomes == [("applied",)]
        # It heartbeat while running (mm7gw_cluster_instances above); a clean stop leaves.
        instances = conn.execute("SELECT instance_id FROM instances").fetchall()
        assert instances == []


async def test_serve_on_postgresql_sends_a_bulk_batch(tmp_path: Path, pg_url: str) -> None:
    """POST /v1/batches (CSV part, one image) to a real ``serve`` on PostgreSQL: every
    distinct recipient is sent once through the mock and delivered, the batch completes,
    a finished batch cannot be canceled, and nothing is left held."""
    from tests.gateway import pg_support

    pg_support.truncate_all(pg_url)
    ports = {name: free_port() for name in ("api", "mm7", "ops")}
    mock_port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path / "data", mock_port, ports))
    os.environ["MM7GW_E2E_STORE_URL"] = pg_url  # start() passes os.environ on
    logs = tmp_path / "logs.txt"
    mock = start(
        ["mock-mmsc", "--listen", f"127.0.0.1:{mock_port}", "--dr-delay", "0.05",
         "--vasp-url", f"http://127.0.0.1:{ports['mm7']}/mm7/mock"],
        logs,
    )  # fmt: skip
    gateway = start(["serve", "--config", str(config)], logs)
    api = f"http://127.0.0.1:{ports['api']}"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    to = [f"+1212555{n:04d}" for n in range(60)]
    csv = "number\n" + "\n".join([*to, to[0], "not-a-number"]) + "\n"
    try:
        wait_http(f"http://127.0.0.1:{mock_port}/admin/stats")
        wait_http(f"http://127.0.0.1:{ports['ops']}/healthz")
        form = aiohttp.FormData()
        form.add_field("message", '{"text": "sale", "media": ["photo"]}')
        form.add_field("photo", jpeg_bytes(), filename="p.jpg", content_type="image/jpeg")
        form.add_field("recipients", csv.encode(), filename="to.csv", content_type="text/csv")
        async with aiohttp.ClientSession() as session:
            async with session.post(api + "/v1/batches", data=form, headers=headers) as r:
                assert r.status == 202, await r.text()
                batch = await r.json()
            assert batch["recipients"] == 60
            # Line 1 is the header: the first number is on line 2, its repeat on 62.
            first, bad = batch["invalid"]
            assert first == {
                "line": 62,
                "value": to[0],
                "error": "duplicate: the same number as line 2",
            }
            assert bad["line"] == 63
            resource: dict[str, object] = {}
            for _ in range(300):
                async with session.get(f"{api}/v1/batches/{batch['id']}", headers=headers) as r:
                    resource = await r.json()
                if resource["status"] == "completed":
                    break
                await asyncio.sleep(0.1)
            assert resource["status"] == "completed", (resource, logs.read_text()[-2000:])
            assert resource["counts"]["delivered"] == 60  # type: ignore[index]
            async with session.delete(f"{api}/v1/batches/{batch['id']}", headers=headers) as r:
                assert r.status == 409
                assert (await r.json())["error"]["code"] == "batch_finished"
    finally:
        stop(gateway)
        stop(mock)
        os.environ.pop("MM7GW_E2E_STORE_URL", None)
    assert gateway.returncode == 0, logs.read_text()[-2000:]
    with psycopg.connect(pg_url) as conn:
        campaign = conn.execute("SELECT status, created_by, recipients FROM campaigns").fetchall()
        assert campaign == [("completed", "gw-e2e", 60)]
        sent = conn.execute(
            "SELECT r.address, COUNT(*) FROM messages m JOIN recipients r ON r.message_id = m.id "
            "JOIN batches b ON b.id = r.batch_id WHERE b.mm7_message_id IS NOT NULL "
            "GROUP BY r.address"
        ).fetchall()
        assert sorted(sent) == [(n, 1) for n in to]
        held = conn.execute("SELECT COUNT(*) FROM batches WHERE state <> 'submitted'").fetchone()
        assert held == (0,)
        assert conn.execute("SELECT COUNT(DISTINCT parts_json) FROM messages").fetchone() == (1,)
