"""The ``mm7-gateway`` command line: one module per command (see ``main.COMMANDS``)."""

from gateway.cli.main import main

__all__ = ["main"]
