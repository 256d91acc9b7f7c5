# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""MM7 address values: ``Number``, ``ShortCode`` and ``RFC2822Address`` with attributes.

An address is a plain value object; whether ``+`` is allowed, or whether the attributes
exist at all, depends on the schema version and is the encoder's business.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final


class AddressKind(enum.Enum):
    NUMBER = "Number"
    SHORT_CODE = "ShortCode"
    RFC2822 = "RFC2822Address"


class AddressCoding(enum.Enum):
    ENCRYPTED = "encrypted"
    OBFUSCATED = "obfuscated"


@dataclass(frozen=True, slots=True, kw_only=True)
class Address:
    """One MM7 address (TS 23.140 §8.2.1 / AddressGroup in the schema)."""

    value: str
    kind: AddressKind = AddressKind.NUMBER
    display_only: bool | None = None
    address_coding: AddressCoding | None = None
    #: ``id`` attribute (xs:ID) used to refer to this address from elsewhere.
    id: str | None = None

    @classmethod
    def number(cls, value: str, *, display_only: bool | None = None) -> Address:
        return cls(value=value, kind=AddressKind.NUMBER, display_only=display_only)

    @classmethod
    def short_code(cls, value: str, *, display_only: bool | None = None) -> Address:
        return cls(value=value, kind=AddressKind.SHORT_CODE, display_only=display_only)

    @classmethod
    def rfc2822(cls, value: str, *, display_only: bool | None = None) -> Address:
        return cls(value=value, kind=AddressKind.RFC2822, display_only=display_only)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True, kw_only=True)
class Recipients:
    """``Recipients``: at least one of To/Cc/Bcc, each a list of addresses."""

    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()

    def all(self) -> tuple[Address, ...]:
        return self.to + self.cc + self.bcc

    def __len__(self) -> int:
        return len(self.to) + len(self.cc) + len(self.bcc)


_PLMN_SUFFIX: Final = re.compile(r"/TYPE=PLMN$", re.IGNORECASE)


def strip_plmn_suffix(value: str) -> tuple[str, bool]:
    """Remove an MMS-style ``/TYPE=PLMN`` suffix; return (value, whether one was removed)."""
    if "/" not in value:  # the common case, without a regex
        return value, False
    stripped = _PLMN_SUFFIX.sub("", value)
    return stripped, stripped != value


def digits_only(value: str) -> str:
    """The digits of a phone number: what MMSCs compare when correlating reports."""
    return "".join(ch for ch in value if ch.isdigit())
