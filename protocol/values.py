# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Text <-> value conversions for MM7 element content (booleans, dates, integers).

Readers are tolerant and report what they tolerated; writers emit the canonical XML
Schema lexical forms.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from protocol.messages import DateValue

_TRUE: Final = frozenset({"true", "1"})
_FALSE: Final = frozenset({"false", "0"})
_COMPACT_DATE: Final = re.compile(r"^\d{14}$")
_DURATION: Final = re.compile(
    r"^-?P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"
)


def read_bool(text: str, leniencies: list[str]) -> bool | None:
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    lowered = text.strip().lower()
    if lowered in _TRUE | {"yes"}:
        leniencies.append("boolean_case")
        return True
    if lowered in _FALSE | {"no"}:
        leniencies.append("boolean_case")
        return False
    leniencies.append("invalid_boolean")
    return None


def write_bool(value: bool) -> str:
    return "true" if value else "false"


def read_int(text: str, leniencies: list[str]) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        leniencies.append("invalid_integer")
        return None


def read_date(text: str, leniencies: list[str]) -> DateValue:
    """Parse an MM7 date; durations and unparseable text come back as the raw string."""
    value = text.strip()
    if not value:
        return value
    if value[0] in "P-" and _DURATION.match(value):
        return value
    iso = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        pass
    else:
        if "T" not in value:
            leniencies.append("date_format")
        return parsed
    if _COMPACT_DATE.match(value):
        try:
            parsed = datetime.strptime(value, "%Y%m%d%H%M%S")  # noqa: DTZ007 - zone unknown on the wire
        except ValueError:
            pass
        else:
            leniencies.append("date_format")
            return parsed
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        leniencies.append("unparsed_date")
        return value
    leniencies.append("date_format")
    return parsed


def write_date(value: DateValue) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return value
