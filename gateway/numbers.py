"""Phone numbers and sender addresses: E.164 validation and normalisation.

Shared by the REST API (validating requests) and the inbound side (replying to a number
an MMSC gave us), so it sits below both.
"""

from __future__ import annotations

import functools
import re
from typing import Final

import phonenumbers

from gateway.errors import ValidationError

_ALNUM_SENDER: Final = re.compile(r"^[A-Za-z0-9 ._-]{1,11}$")
_SHORT_CODE: Final = re.compile(r"^\d{3,8}$")


def normalise_number(raw: object, field_name: str = "to") -> str:
    """Validate an E.164 number (``+`` and country code required) and normalise it."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationError(
            "phone numbers must be non-empty strings", field=field_name, code="invalid_number"
        )
    return _e164(raw.strip(), field_name)


@functools.lru_cache(maxsize=65536)
def _e164(text: str, field_name: str) -> str:
    # Memoised: phonenumbers costs ~40 us a number, and campaigns and retries repeat them.
    # A ValidationError is not cached (lru_cache does not store exceptions).
    if not text.startswith("+"):
        raise ValidationError(
            f"{_mask(text)} is not in E.164 format (it must start with + and the country code)",
            field=field_name,
            code="invalid_number",
        )
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            f"{_mask(text)} is not a phone number", field=field_name, code="invalid_number"
        ) from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(
            f"{_mask(text)} is not a valid phone number", field=field_name, code="invalid_number"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _mask(number: str) -> str:
    return number[:3] + "..." + number[-4:] if len(number) > 7 else "..."


def normalise_sender(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationError(
            "from must be a non-empty string", field="from", code="invalid_sender"
        )
    text = raw.strip()
    if text.startswith("+"):
        return normalise_number(text, "from")
    if _SHORT_CODE.match(text) or _ALNUM_SENDER.match(text):
        return text
    raise ValidationError(
        "from must be a short code (3-8 digits), an E.164 long code "
        "or an alphanumeric id (up to 11 chars)",
        field="from",
        code="invalid_sender",
    )
