# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""``mm7-gateway check-config FILE``: validate a gateway config file without starting it.

Prints ``ok: N mmsc routes, M api keys`` and exits 0, or prints every problem as
``FILE: key.path: message`` (one per line) on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.config.load import load_config
from gateway.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", type=Path, help="gateway TOML config file")


def run(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"{path}: {problem}\n")
        return 2
    # Always plural: the line is a fixed format that scripts may match.
    sys.stdout.write(f"ok: {len(config.mmsc)} mmsc routes, {len(config.api_keys)} api keys\n")
    return 0
