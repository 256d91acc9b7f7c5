"""Reading ``POST /v1/batches`` bodies: a JSON object whose ``to`` list is scanned item
by item, or a form with a ``message`` JSON field, media parts and a ``recipients`` CSV.

Recipients never become one Python list: each item is validated as it is scanned and
kept in the compact :class:`RecipientList` (a 100,000-number list would otherwise be
100,000 string objects, twice: raw and normalised). The other fields are small and are
decoded normally, then validated by ``parse_submit`` like a single message.
"""

from __future__ import annotations

import json
import re
from typing import Final

from gateway.errors import ValidationError
from gateway.outbound.recipient_list import RecipientList

_SPACE: Final = re.compile(r"[ \t\n\r]*")
_DECODER: Final = json.JSONDecoder()
#: The CSV header a recipients part may start with.
CSV_HEADER: Final = "number"


def _malformed(why: str) -> ValidationError:
    return ValidationError(f"malformed JSON: {why}", code="malformed_json")


def _skip(text: str, pos: int) -> int:
    match = _SPACE.match(text, pos)
    return match.end() if match else pos


def _value(text: str, pos: int) -> tuple[object, int]:
    try:
        return _DECODER.raw_decode(text, pos)
    except ValueError as exc:
        raise _malformed(str(exc)) from None
    except RecursionError:
        raise ValidationError("JSON nested too deeply", code="malformed_json") from None


def _expect(text: str, pos: int, char: str) -> int:
    if not text.startswith(char, pos):
        raise _malformed(f"expected {char!r} at character {pos}")
    return _skip(text, pos + 1)


def _scan_list(text: str, pos: int, recipients: RecipientList) -> int:
    """Scan the ``to`` array starting at ``[``; each item goes to ``recipients``."""
    pos = _expect(text, pos, "[")
    line = 0
    if text.startswith("]", pos):
        return pos + 1
    while True:
        item, pos = _value(text, pos)
        line += 1
        recipients.add(line, item)
        pos = _skip(text, pos)
        if text.startswith("]", pos):
            return pos + 1
        pos = _expect(text, pos, ",")


def scan_json(raw: bytes, recipients: RecipientList) -> dict[str, object]:
    """The fields of a JSON batch body except ``to``, whose items (1-based positions as
    their line numbers) are added to ``recipients`` as they are read.

    Raises:
        ValidationError: malformed JSON, a body that is no object, a repeated field, or
            too many recipients.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed(str(exc)) from None
    fields: dict[str, object] = {}
    pos = _skip(text, 0)
    if not text.startswith("{", pos):
        raise ValidationError("the request body must be a JSON object")
    pos = _skip(text, pos + 1)
    closed = text.startswith("}", pos)
    pos = pos + 1 if closed else pos
    while not closed:
        key, pos = _value(text, pos)
        if not isinstance(key, str):
            raise _malformed(f"expected a field name at character {pos}")
        if key in fields:
            raise ValidationError(f"the field {key!r} is given twice", field=key)
        pos = _expect(text, _skip(text, pos), ":")
        if key == "to" and text.startswith("[", pos):
            pos = _scan_list(text, pos, recipients)
            fields[key] = None
        else:
            value, pos = _value(text, pos)
            if key == "to":
                recipients.add(1, value)
            fields[key] = value
        pos = _skip(text, pos)
        closed = text.startswith("}", pos)
        pos = pos + 1 if closed else _expect(text, pos, ",")
    if _skip(text, pos) != len(text):
        raise _malformed(f"extra data at character {pos}")
    return fields


def scan_csv(raw: bytes, recipients: RecipientList) -> None:
    """Add the numbers of a CSV part (one per line, first column; an optional first line
    ``number``; blank lines skipped) to ``recipients``, with their 1-based line numbers.

    Raises:
        ValidationError: the part is not UTF-8, or too many recipients.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError(
            "the recipients part must be UTF-8 text", field="recipients", code="malformed_csv"
        ) from None
    pos, line, seen = 0, 0, False
    while pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        value = text[pos:end].split(",", 1)[0].strip().strip('"').strip()
        pos, line = end + 1, line + 1
        if not value:
            continue
        if not seen and value.lower() == CSV_HEADER:
            seen = True
            continue
        seen = True
        recipients.add(line, value)
