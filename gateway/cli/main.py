"""``mm7-gateway`` command line: one subcommand per module, imported lazily.

Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int``. Exit
codes: 0 ok, 1 runtime failure, 2 usage or configuration error; errors are one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Final

from gateway import __version__

#: subcommand -> (module, one-line help)
COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "serve": ("gateway.cli.serve", "run the gateway daemon"),
    "mock-mmsc": ("gateway.mock_mmsc.cli", "run the bundled mock MMSC"),
    "demo": ("gateway.cli.demo", "run a mock MMSC and a gateway and show an MMS round trip"),
    "send": ("gateway.cli.send", "submit an MMS through a running gateway and follow it"),
    "inspect": ("gateway.cli.inspect", "decode a captured MM7 body or HTTP message to JSON"),
    "check-config": ("gateway.cli.check_config", "validate a gateway config file"),
    "migrate": ("gateway.cli.migrate", "apply the store's schema migrations and exit"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mm7-gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mm7-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            continue  # command not built into this version
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_module=module_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(args._module)  # noqa: SLF001 - our own default
    try:
        return int(module.run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
