"""``mm7-gateway migrate --config FILE``: apply the store's schema migrations and exit.

``serve`` migrates at start too; this lets an operator upgrade the schema ahead of a
rollout. Safe while other instances run or start (PostgreSQL migrations take an advisory
lock). Prints ``ok: schema version N (backend)``; exits 0, 1 when the store fails, 2 on
a configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gateway.config.load import load_config
from gateway.config.model import GatewayConfig
from gateway.errors import ConfigError, StoreError
from gateway.store import build_backend


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="gateway TOML config file")


async def migrate(config: GatewayConfig) -> tuple[int, str]:
    """Open (which migrates) and close the configured store: ``(version, backend)``."""
    url = config.store.url
    backend = build_backend(
        None if url is None else url.get_secret_value(),
        sqlite_path=Path(config.gateway.data_dir) / "gateway.sqlite3",
        pool_size=1,
        instance_id=config.cluster.instance_id,
    )
    await backend.store.open()
    try:
        return backend.store.schema_version, backend.kind
    finally:
        await backend.store.close()


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"{args.config}: {problem}\n")
        return 2
    try:
        version, kind = asyncio.run(migrate(config))
    except StoreError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(f"ok: schema version {version} ({kind})\n")
    return 0
