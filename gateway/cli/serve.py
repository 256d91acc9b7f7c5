"""``mm7-gateway serve``: run the gateway until SIGTERM/SIGINT, then drain and exit;
SIGHUP reloads the listeners' TLS certificates."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import structlog

from gateway.app import Gateway
from gateway.config.load import load_config
from gateway.config.model import GatewayConfig
from gateway.errors import ConfigError, GatewayError
from gateway.ops.log_setup import configure_logging

log = structlog.get_logger("gateway.cli.serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="gateway TOML config file")


async def serve(config: GatewayConfig, shutdown: asyncio.Event | None = None) -> None:
    """Run a gateway until ``shutdown`` is set (or a termination signal arrives)."""
    stop = shutdown or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    gateway = Gateway(config)
    await gateway.start()
    # SIGHUP: new listener certificates (e.g. renewed by an ACME client) without a restart.
    loop.add_signal_handler(signal.SIGHUP, gateway.reload_tls)
    try:
        await stop.wait()
        log.info("shutting down")
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        await gateway.stop()


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(
        level=config.logging.level,
        fmt=config.logging.format,
        mask_numbers=config.logging.mask_numbers,
    )
    try:
        asyncio.run(serve(config))
    except GatewayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0
