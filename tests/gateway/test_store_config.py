"""``[store] url`` / ``pool_size`` and ``[cluster] lease_seconds`` choose and tune the
backend; ``mm7-gateway migrate`` applies the schema of the configured one."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import migrate as migrate_cli
from gateway.config.load import config_from_dict
from gateway.errors import ConfigError
from gateway.store import SqliteStore, build_backend
from gateway.store.postgresql import PostgresStore
from gateway.store.sqlite.migrations import CURRENT_VERSION

KEY = "a-signing-key-0123456789abcdef"


def raw(**sections: Any) -> dict[str, Any]:
    return {"mmsc": [{"name": "a", "url": "http://127.0.0.1:9090/mm7"}], **sections}


def problems(exc: ConfigError) -> dict[str, str]:
    return {p.key_path: p.message for p in exc.problems}


def test_sqlite_in_data_dir_stays_the_default(tmp_path: Path) -> None:
    config = config_from_dict(raw(gateway={"data_dir": str(tmp_path)}))
    assert config.store.url is None and config.store.pool_size == 10
    assert config.cluster.lease_seconds == 30.0
    backend = build_backend(None, sqlite_path=tmp_path / "gateway.sqlite3")
    assert isinstance(backend.store, SqliteStore) and backend.media is None
    assert backend.kind == "sqlite" and not backend.store.shared


def test_a_postgresql_url_from_the_environment_selects_the_shared_store() -> None:
    url = "postgresql://gw:pw@db.internal:5432/mm7gw"
    config = config_from_dict(
        raw(store={"url": "env:MM7GW_DB", "pool_size": 4}, gateway={"signing_key": KEY},
            cluster={"instance_id": "gw-a", "lease_seconds": 20.0}),
        environ={"MM7GW_DB": url},
    )  # fmt: skip
    assert config.store.url is not None and config.store.url.get_secret_value() == url
    assert "pw" not in repr(config.store)  # the URL may hold a password
    backend = build_backend(
        config.store.url.get_secret_value(), sqlite_path=Path("unused"),
        pool_size=config.store.pool_size, instance_id=config.cluster.instance_id,
        lease_seconds=config.cluster.lease_seconds,
    )  # fmt: skip
    assert isinstance(backend.store, PostgresStore) and backend.store.shared
    assert (backend.store.instance_id, backend.store.lease_seconds) == ("gw-a", 20.0)
    assert backend.media is not None and backend.kind == "postgresql"


@pytest.mark.parametrize(
    ("sections", "environ", "key", "words"),
    [
        ({"store": {"url": "mysql://x/y"}, "gateway": {"signing_key": KEY}}, {}, "store.url",
         "postgresql://"),
        ({"store": {"url": "env:NOPE"}, "gateway": {"signing_key": KEY}}, {}, "store.url",
         "NOPE is not set"),
        ({"store": {"url": "postgresql://h/db"}}, {}, "gateway.signing_key", "same key"),
        ({"store": {"url": "postgresql://h/db"}, "gateway": {"signing_key": KEY},
          "cluster": {"lease_seconds": 6.0}}, {}, "cluster.lease_seconds", "heartbeat"),
        ({"store": {"pool_size": 0}}, {}, "store.pool_size", "must be >= 1"),
    ],
)  # fmt: skip
def test_store_problems_name_their_key(
    sections: dict[str, Any], environ: dict[str, str], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(raw(**sections), environ=environ)
    assert words in problems(caught.value)[key]


def test_migrate_applies_the_sqlite_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config = tmp_path / "gw.toml"
    config.write_text(
        f'[gateway]\ndata_dir = "{tmp_path}"\n[[mmsc]]\nname = "a"\nurl = "http://127.0.0.1:9/mm7"\n'
    )
    assert migrate_cli.run(argparse.Namespace(config=config)) == 0
    assert capsys.readouterr().out == f"ok: schema version {CURRENT_VERSION} (sqlite)\n"
    assert (tmp_path / "gateway.sqlite3").exists()


def test_migrate_reports_a_bad_config_and_an_unreachable_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gw.toml"
    config.write_text("[store]\nurl = 'mysql://x'\n")
    assert migrate_cli.run(argparse.Namespace(config=config)) == 2
    assert "store.url" in capsys.readouterr().err
    config.write_text(
        f'[gateway]\nsigning_key = "{KEY}"\n[store]\nurl = "postgresql://root@127.0.0.1:1/x"\n'
        '[[mmsc]]\nname = "a"\nurl = "http://127.0.0.1:9/mm7"\n'
    )
    assert migrate_cli.run(argparse.Namespace(config=config)) == 1
    assert capsys.readouterr().err.startswith("error: cannot open database")
