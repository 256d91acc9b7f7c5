"""Load and validate the gateway's TOML configuration, naming the key path of every problem."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from gateway.config import ENVIRON_CONTEXT_KEY, CrossCheckError, GatewayConfig
from gateway.errors import ConfigError, ConfigProblem


def key_path(location: tuple[int | str, ...]) -> str:
    """``("mmsc", 0, "tps")`` → ``mmsc[0].tps``."""
    out = ""
    for item in location:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += ("." if out else "") + str(item)
    return out


def problems_from(exc: PydanticValidationError) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for error in exc.errors(include_url=False):
        location = tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))
        context = error.get("ctx") or {}
        inner = context.get("error")
        if isinstance(inner, CrossCheckError):
            problems.extend(inner.problems)
            continue
        message = str(error["msg"])
        if error["type"] == "extra_forbidden":
            message = "unknown key (misspelt, or not supported here)"
        elif error["type"] == "missing":
            message = "required key is missing"
        message = message.removeprefix("Value error, ")
        problems.append(ConfigProblem(key_path(location), message))
    return problems


def validate_config(
    raw: Mapping[str, Any], environ: Mapping[str, str] | None = None, *, source: str | None = None
) -> GatewayConfig:
    """Validate an already-parsed configuration mapping."""
    try:
        return GatewayConfig.model_validate(
            dict(raw), context={ENVIRON_CONTEXT_KEY: os.environ if environ is None else environ}
        )
    except PydanticValidationError as exc:
        problems = problems_from(exc)
        summary = f"{len(problems)} problem(s) in the configuration"
        if source:
            summary = f"{source}: {summary}: " + "; ".join(str(p) for p in problems)
        raise ConfigError(summary, problems=problems, source=source) from None


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read, parse and validate a TOML config file.

    Raises:
        ConfigError: unreadable file, TOML syntax error (with line/column) or invalid
            values; ``problems`` lists each one with its key path.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}", "", source=source) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}", "", source=source) from None
    return validate_config(raw, environ, source=source)
