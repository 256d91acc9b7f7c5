"""``mm7-gateway mock-mmsc``: flags, config file, and the serve loop until SIGINT/SIGTERM.

Every key of ``config.KEYS`` is a flag (``dr_delay`` ↔ ``--dr-delay``); flags override the
``--config`` file, which overrides the defaults. Exit codes: 0 after a clean stop, 2 for
a bad flag or config (one line naming the key), 1 when the listener cannot start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from aiohttp import web

from gateway.mock_mmsc.app import create_app
from gateway.mock_mmsc.config import KEYS, MockConfigError, MockSettings, apply, load_toml

PROG = "mm7-gateway mock-mmsc"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file")
    for key, spec in KEYS.items():
        parser.add_argument(
            "--" + key.replace("_", "-"),
            dest=key,
            metavar=spec.metavar or None,
            default=argparse.SUPPRESS,
            help=spec.help,
        )


def settings_from_args(args: argparse.Namespace) -> MockSettings:
    """Defaults, then the config file, then the flags given; raises ``MockConfigError``."""
    settings = MockSettings()
    config: Path | None = getattr(args, "config", None)
    if config is not None:
        try:
            settings = apply(settings, load_toml(config))
        except MockConfigError as exc:
            if exc.key == str(config):
                raise
            raise MockConfigError(exc.key, f"{exc.detail} (in {config})") from None
    flags = {key: value for key, value in vars(args).items() if key in KEYS}
    return apply(settings, flags)


async def serve(settings: MockSettings, stop: asyncio.Event | None = None) -> None:
    """Run the mock until ``stop`` is set (by default: on SIGINT or SIGTERM)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows event loops
            loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(create_app(settings), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.listen_host, settings.listen_port)
        await site.start()
        host, port = runner.addresses[0][:2]
        sys.stderr.write(f"{PROG}: listening on http://{host}:{port}/mm7\n")
        sys.stderr.flush()
        await stop.wait()
    finally:
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except MockConfigError as exc:
        sys.stderr.write(f"{PROG}: config error: {exc}\n")
        return 2
    try:
        asyncio.run(serve(settings))
    except OSError as exc:
        sys.stderr.write(
            f"{PROG}: cannot listen on {settings.listen_host}:{settings.listen_port}: "
            f"{exc.strerror or exc}\n"
        )
        return 1
    return 0
