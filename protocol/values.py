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

from protocol.errors import InvalidDate

if TYPE_CHECKING:
    from protocol.messages import DateValue

_TRUE: Final = frozenset({"true", "1"})
_FALSE: Final = frozenset({"false", "0"})
_COMPACT_DATE: Final = re.compile(r"^\d{14}$")
_DURATION: Final = re.compile(
    r"^-?P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"
)
#: The xs:dateTime lexical form (what a raw string must already be to be written as is).
_XS_DATETIME: Final = re.compile(
    r"^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$"
)
#: ISO 8601 with unpadded fields, as some MMSCs write them (``2005-06-4T10:55:59+09:00``).
#: Year first keeps it unambiguous, unlike ``02-07-2024`` (day or month first?).
_UNPADDED_ISO: Final = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})[T ](\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d+)?"
    r"(Z|z|[+-]\d{1,2}:?\d{2})?$"
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
    unpadded = _UNPADDED_ISO.match(value)
    if unpadded:
        year, *fields, fraction, zone = unpadded.groups()
        month, day, hour, minute, second = (int(f) for f in fields)
        padded = f"{year}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction or ''}"
        if zone:
            sign, digits = zone[0], zone[1:].replace(":", "")
            padded += "+00:00" if sign in "Zz" else f"{sign}{int(digits[:-2]):02}:{digits[-2:]}"
        try:
            parsed = datetime.fromisoformat(padded)
        except ValueError:
            pass
        else:
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


def _valid_date(value: str) -> bool:
    try:
        datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        return False
    return True


def write_date(value: DateValue) -> str:
    """A datetime in ISO form; a string only if it already is an xs:dateTime or xs:duration.

    A decoded date that did not parse is kept as text for the caller to see, but writing
    it back would put schema-invalid output on the wire: refused with ``InvalidDate``.
    """
    if isinstance(value, datetime):
        return value.isoformat()
    if _DURATION.match(value) or (_XS_DATETIME.match(value) and _valid_date(value)):
        return value
    raise InvalidDate(f"{value!r} is neither an xs:dateTime nor an xs:duration")
