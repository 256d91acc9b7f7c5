"""A reader for the YAML subset our deployment files use (no YAML library is a dependency).

Block mappings and sequences by indentation, ``- key: value`` items, quoted and plain
scalars, ``{}``/``[]`` and one-line flow lists, ``|``/``>`` block scalars, and full-line
comments. Anything else (anchors, multi-document, inline comments) raises ``ValueError``,
so a file drifting outside the subset fails its test loudly instead of being misread.
"""

from __future__ import annotations

import json
import re
from typing import Any

_KEY = re.compile(r"^([A-Za-z0-9_.-]+):(?:\s+(.*))?$")


def load(text: str) -> Any:
    lines: list[tuple[int, str]] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if raw.startswith("---") or "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ValueError(f"outside the subset: {raw!r}")
        lines.append((len(raw) - len(raw.lstrip(" ")), stripped))
    value, index = _block(lines, _skip(lines, 0))
    if _skip(lines, index) != len(lines):
        raise ValueError(f"unexpected line: {lines[index][1]!r}")
    return value


def _ignorable(line: tuple[int, str]) -> bool:
    return not line[1] or line[1].startswith("#")


def _skip(lines: list[tuple[int, str]], index: int) -> int:
    while index < len(lines) and _ignorable(lines[index]):
        index += 1
    return index


def _block(lines: list[tuple[int, str]], index: int) -> tuple[Any, int]:
    indent, text = lines[index]
    if text == "-" or text.startswith("- "):
        return _sequence(lines, index, indent)
    return _mapping(lines, index, indent)


def _sequence(lines: list[tuple[int, str]], index: int, indent: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    while (index := _skip(lines, index)) < len(lines):
        line_indent, text = lines[index]
        if line_indent < indent:
            break
        if line_indent > indent or not (text == "-" or text.startswith("- ")):
            raise ValueError(f"bad sequence item: {text!r}")
        rest = text[1:].strip()
        if not rest:
            value, index = _block(lines, _skip(lines, index + 1))
        elif _KEY.match(rest) and not rest.startswith(('"', "'")):
            # ``- key: value``: a mapping whose first key sits on the dash line.
            lines[index] = (indent + 2, rest)
            value, index = _mapping(lines, index, indent + 2)
        else:
            value, index = _scalar(rest), index + 1
        items.append(value)
    return items, index


def _mapping(lines: list[tuple[int, str]], index: int, indent: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    while (index := _skip(lines, index)) < len(lines):
        line_indent, text = lines[index]
        if line_indent < indent:
            break
        match = _KEY.match(text)
        if line_indent > indent or match is None:
            raise ValueError(f"bad mapping entry: {text!r}")
        key, rest = match.group(1), (match.group(2) or "").strip()
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        if rest in ("|", "|-", ">", ">-"):
            value, index = _block_scalar(lines, index + 1, indent, folded=rest[0] == ">")
        elif rest:
            value, index = _scalar(rest), index + 1
        else:
            nested = _skip(lines, index + 1)
            if nested >= len(lines) or lines[nested][0] <= indent:
                value, index = None, index + 1
            else:
                value, index = _block(lines, nested)
        result[key] = value
    return result, index


def _block_scalar(
    lines: list[tuple[int, str]], index: int, indent: int, *, folded: bool
) -> tuple[str, int]:
    parts: list[str] = []
    while index < len(lines) and (not lines[index][1] or lines[index][0] > indent):
        parts.append(lines[index][1])
        index += 1
    return (" " if folded else "\n").join(parts).strip(), index


def _scalar(text: str) -> Any:
    if text.startswith('"'):
        if not text.endswith('"') or len(text) < 2:
            raise ValueError(f"unterminated string: {text!r}")
        return json.loads(text)
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise ValueError(f"unterminated string: {text!r}")
        return text[1:-1].replace("''", "'")
    if text == "{}":
        return {}
    if text.startswith("["):
        if not text.endswith("]"):
            raise ValueError(f"unterminated flow list: {text!r}")
        inner = text[1:-1].strip()
        return [_scalar(item.strip()) for item in inner.split(",")] if inner else []
    if " #" in text or text.startswith(("&", "*", "!", "{")):
        raise ValueError(f"outside the subset: {text!r}")
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d*", text):
        return float(text)
    return text
