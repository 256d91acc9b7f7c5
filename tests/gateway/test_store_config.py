"""``[store]`` and ``[cluster]`` configuration, and ``mm7-gateway migrate`` run as a real
subprocess against SQLite and PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from gateway.config.load import config_from_dict
from gateway.errors import ConfigError
from gateway.store.postgresql.migrations import CURRENT_VERSION as PG_VERSION
from gateway.store.sqlite.migrations import CURRENT_VERSION as SQLITE_VERSION
from tests.gateway import pg_support

ROUTE = {"name": "a", "url": "http://127.0.0.1:9090/mm7"}


def problems(data, environ=None):
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, environ=environ or {})
    return {p.key_path: p.message for p in info.value.problems}


def test_defaults_are_sqlite_and_hostname_pid():
    config = config_from_dict({"mmsc": [ROUTE]}, environ={})
    assert config.store.url is None and config.store.pool_size == 10
    assert config.cluster.instance_id == f"{socket.gethostname()}-{os.getpid()}"
    assert config.cluster.lease_seconds == 60.0


def test_store_url_from_env_is_a_secret():
    url = "postgresql://gw:pw@db.example:5432/mm7gw"
    config = config_from_dict(
        {"mmsc": [ROUTE], "store": {"url": "env:STORE_URL"}, "gateway": KEYED},
        environ={"STORE_URL": url},
    )
    assert config.store.url is not None and config.store.url.get_secret_value() == url
    assert "pw" not in repr(config) and "pw" not in str(config.store)


def test_store_and_cluster_problems_name_their_keys():
    found = problems(
        {
            "mmsc": [ROUTE],
            "store": {"url": "mysql://db/x", "pool_size": 0},
            "cluster": {"instance_id": "has space", "lease_seconds": -1},
        }
    )
    assert "postgresql://" in found["store.url"]
    assert set(found) == {
        "store.url", "store.pool_size", "cluster.instance_id", "cluster.lease_seconds",
    }  # fmt: skip
    assert "MISSING" in problems({"mmsc": [ROUTE], "store": {"url": "env:MISSING"}})["store.url"]


SHARED = {"url": "postgresql://root@127.0.0.1/x"}
KEYED = {"signing_key": "k" * 32}


def test_a_shared_store_needs_one_signing_key_for_all_instances():
    found = problems({"mmsc": [ROUTE], "store": SHARED})
    assert "same key" in found["gateway.signing_key"]
    config_from_dict({"mmsc": [ROUTE], "store": SHARED, "gateway": KEYED}, environ={})


def test_lease_must_outlast_the_submit_timeout_on_the_shared_store():
    data = {
        "mmsc": [{**ROUTE, "timeout_seconds": 90.0}],
        "store": SHARED,
        "gateway": KEYED,
    }
    assert "90" in problems(data)["cluster.lease_seconds"]
    config_from_dict({**data, "cluster": {"lease_seconds": 120.0}}, environ={})
    slow_hooks = {**data, "mmsc": [ROUTE], "webhooks": {"timeout_seconds": 75.0}}
    assert "75" in problems(slow_hooks)["cluster.lease_seconds"]
    config_from_dict({"mmsc": data["mmsc"]}, environ={})  # SQLite: no leases, no check


def migrate_cmd(config: Path, environ: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "gateway", "migrate", "--config", str(config)],
        capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, **(environ or {})},
    )  # fmt: skip


def write_config(tmp_path: Path, store: str = "", *, key: bool = False) -> Path:
    path = tmp_path / "gw.toml"
    signing = f'signing_key = "{"k" * 32}"\n' if key else ""
    path.write_text(
        f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n{signing}{store}\n'
        '[[mmsc]]\nname = "a"\nurl = "http://127.0.0.1:9090/mm7"\n',
        encoding="utf-8",
    )
    return path


def test_migrate_sqlite(tmp_path):
    result = migrate_cmd(write_config(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ok: schema version {SQLITE_VERSION} (sqlite)"
    assert (tmp_path / "data" / "gateway.sqlite3").is_file()


def test_migrate_postgresql_twice(tmp_path):
    pg_support.require_postgres()
    name = pg_support.create_database()
    try:
        config = write_config(tmp_path, '[store]\nurl = "env:MM7GW_TEST_STORE_URL"\n', key=True)
        env = {"MM7GW_TEST_STORE_URL": pg_support.url_of(name)}
        for _ in range(2):
            result = migrate_cmd(config, env)
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == f"ok: schema version {PG_VERSION} (postgresql)"
        with psycopg.connect(pg_support.url_of(name)) as conn:
            count = conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]
        assert count == len({1, 2, 3, PG_VERSION})
    finally:
        pg_support.drop_database(name)


def test_migrate_reports_config_and_store_errors(tmp_path):
    bad = migrate_cmd(write_config(tmp_path, '[store]\nurl = "sqlite:///x"\n'))
    assert bad.returncode == 2 and "store.url" in bad.stderr
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = migrate_cmd(
        write_config(
            tmp_path, f'[store]\nurl = "postgresql://u:hunter2@127.0.0.1:{port}/x"\n', key=True
        )
    )
    assert down.returncode == 1 and "cannot open database" in down.stderr
    assert "hunter2" not in down.stderr and "Traceback" not in down.stderr
