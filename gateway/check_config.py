"""``mm7-gateway check-config FILE``: validate a config and list every problem with its key path."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.config_loader import load_config
from gateway.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="gateway TOML config file")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        for problem in exc.problems:
            where = f"{problem.key_path}: " if problem.key_path else ""
            message = problem.message.removeprefix(f"{args.file}: ")
            print(f"{args.file}: {where}{message}", file=sys.stderr)
        return 2
    print(f"ok: {len(config.mmsc)} mmsc route(s), {len(config.api_keys)} api key(s)")
    return 0
