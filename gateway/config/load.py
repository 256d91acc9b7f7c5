# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Read a TOML file into a validated ``GatewayConfig``, or say everything that is wrong.

``load_config(path, environ)`` parses the file, resolves ``env:VAR`` secrets from
``environ`` and validates the whole tree at once. On failure it raises one ``ConfigError``
whose ``problems`` list *every* problem with its key path (``mmsc[0].tps: must be >= 0``),
so an operator fixes the file in one round trip. Messages never include the offending
value, since it may be a secret.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic

from gateway.config import rules
from gateway.config.mmsc import MmscConfig, RetrySection
from gateway.config.model import GatewayConfig, default_route_problems, duplicate_problems
from gateway.config.sections import ListenSection, OptoutSection, WebhooksSection
from gateway.config.values import ENVIRON_CONTEXT_KEY, CrossCheckError
from gateway.errors import ConfigError, ConfigProblem

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

#: pydantic error types → our wording; ``{…}`` fields come from the error's ``ctx``.
_MESSAGES: dict[str, str] = {
    "missing": "required key is missing",
    "extra_forbidden": "unknown key",
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "string_pattern_mismatch": "must match {pattern}",
    "string_too_long": "must be at most {max_length} characters",
    "too_short": "must have at least {min_length} entries",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "dict_type": "must be a table",
    "tuple_type": "must be an array",
    "list_type": "must be an array",
}


def format_key_path(loc: tuple[int | str, ...]) -> str:
    """``("mmsc", 0, "retry", "jitter")`` → ``mmsc[0].retry.jitter``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            continue  # pydantic's marker for "the dict key itself"; the key is already shown
        elif _BARE_KEY.match(part):
            path += f".{part}" if path else part
        else:
            path += f'."{part}"' if path else f'"{part}"'
    return path


def _number(value: object) -> object:
    """``0.0`` → ``0`` so bounds read as the operator wrote them."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _message(error: Mapping[str, Any]) -> str:
    kind = str(error["type"])
    ctx = error.get("ctx") or {}
    template = _MESSAGES.get(kind)
    if template is not None:
        shown = {k: _number(v) for k, v in ctx.items()}
        try:
            return template.format(**shown)
        except (KeyError, IndexError):
            pass  # a ctx without the field: fall back to pydantic's own text
    text = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        text = text.removeprefix(prefix)
    return text.replace("Input should be", "must be")


def problems_from(exc: pydantic.ValidationError) -> list[ConfigProblem]:
    """Every problem in a pydantic validation error, with TOML-style key paths."""
    problems: list[ConfigProblem] = []
    errors = exc.errors(include_url=False, include_input=False)
    for error in errors:
        loc = tuple(error["loc"])
        # pydantic counts only the valid entries against min_length: "at least 1 entry"
        # next to errors inside the entries is noise, the entry errors say it all.
        if error["type"] == "too_short" and any(
            len(e["loc"]) > len(loc) and tuple(e["loc"][: len(loc)]) == loc for e in errors
        ):
            continue
        base = format_key_path(loc)
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, CrossCheckError):
            problems.extend(rules.under(base, cause.problems))
        else:
            problems.append(ConfigProblem(base, _message(error)))
    return problems


def _with_defaults(model: type[pydantic.BaseModel], table: object) -> dict[str, object] | None:
    """A raw table's values, each missing key as its default (None: not a table)."""
    if not isinstance(table, dict):
        return None
    return {name: table.get(name, field.default) for name, field in model.model_fields.items()}


def _raw_cross_problems(data: Mapping[str, Any]) -> list[ConfigProblem]:
    """Cross-field checks on the raw tables, for when field errors stopped the model's own.

    The models run the same rules after their fields validate; running them here too means
    a file with both kinds of problem is reported completely in one pass (duplicates of
    what the models found are dropped by ``_error``).
    """

    def column(section: str, key: str) -> list[object]:
        entries = data.get(section)
        if not isinstance(entries, list):
            return []
        return [e.get(key) if isinstance(e, dict) else None for e in entries]

    problems = [
        *duplicate_problems("mmsc", "name", column("mmsc", "name")),
        *default_route_problems(column("mmsc", "route_default")),
        *duplicate_problems("api_keys", "name", column("api_keys", "name")),
        *duplicate_problems("api_keys", "key", column("api_keys", "key"), show=False),
    ]
    sections = (
        ("listen", ListenSection, rules.listen_problems),
        ("webhooks", WebhooksSection, rules.webhooks_problems),
        ("optout", OptoutSection, rules.optout_problems),
    )
    for name, model, check in sections:
        values = _with_defaults(model, data.get(name, {}))
        if values is not None:
            problems += rules.under(name, check(values))
    routes = data.get("mmsc")
    for index, route in enumerate(routes if isinstance(routes, list) else []):
        values = _with_defaults(MmscConfig, route)
        if values is None:
            continue
        problems += rules.under(f"mmsc[{index}]", rules.mmsc_problems(values))
        retry = _with_defaults(RetrySection, values["retry"] if "retry" in route else {})
        if retry is not None:
            problems += rules.under(f"mmsc[{index}].retry", rules.retry_problems(retry))
    return problems


def _error(source: str, problems: list[ConfigProblem]) -> ConfigError:
    unique = list(dict.fromkeys(problems))
    count = len(unique)
    summary = "; ".join(str(p) for p in unique)
    noun = "problem" if count == 1 else "problems"
    return ConfigError(f"{source}: {count} {noun}: {summary}", problems=unique, source=source)


def config_from_dict(
    data: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    source: str = "<config>",
) -> GatewayConfig:
    """Validate already-parsed configuration tables.

    Args:
        data: the TOML document as a dict.
        environ: where ``env:VAR`` secrets are read from (default ``os.environ``).
        source: how to name the configuration in messages (the file name).

    Raises:
        ConfigError: listing every problem found.
    """
    env = os.environ if environ is None else environ
    try:
        return GatewayConfig.model_validate(data, context={ENVIRON_CONTEXT_KEY: env})
    except pydantic.ValidationError as exc:
        problems = problems_from(exc) + _raw_cross_problems(data)
        raise _error(source, problems) from None


def validate_config(
    raw: Mapping[str, Any], environ: Mapping[str, str] | None = None, *, source: str | None = None
) -> GatewayConfig:
    """``config_from_dict`` under the name the first daemon code used; same contract."""
    return config_from_dict(raw, environ=environ, source=source or "<config>")


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read, parse and validate a gateway TOML file.

    Args:
        path: the TOML file.
        environ: where ``env:VAR`` secrets are read from (default ``os.environ``).

    Returns:
        The frozen, validated configuration.

    Raises:
        ConfigError: the file cannot be read, is not valid TOML (the message gives line
            and column), or fails validation (``problems`` lists every problem).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _error(source, [ConfigProblem("", f"cannot read file: {reason}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _error(source, [ConfigProblem("", f"TOML syntax error: {exc}")]) from None
    return config_from_dict(data, environ=environ, source=source)
