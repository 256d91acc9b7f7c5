"""The README documents every configuration key the code reads, and the CLI it shows."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from gateway.cli.main import COMMANDS
from gateway.config.model import GatewayConfig

README = Path(__file__).resolve().parents[2] / "README.md"


def config_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        args = typing.get_args(annotation)
        nested = None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested = annotation
        elif args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            nested = args[0]  # tuple[ApiKeyConfig, ...] and friends
        if nested is not None:
            keys += config_keys(nested, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_every_config_key_is_in_the_readme_table():
    documented = set(re.findall(r"^\| `([a-z0-9_.]+)` \|", README.read_text(), re.MULTILINE))
    keys = config_keys(GatewayConfig)
    assert len(keys) > 60
    missing = [key for key in keys if key not in documented]
    assert not missing, f"README configuration table lacks {missing}"
    unknown = sorted(documented - set(keys) - {"mm7-gateway"})
    assert not [k for k in unknown if "." in k], f"README documents keys the code lacks: {unknown}"


def test_every_command_is_in_the_readme():
    text = README.read_text()
    for command in COMMANDS:
        assert f"`mm7-gateway {command}" in text, command
    assert "make demo" in text and "make test" in text
