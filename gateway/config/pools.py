# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""``[[pool]]`` and ``[[pool.sender]]``: named sender pools with consent rules (DESIGN §12).

A pool is a set of sender addresses used for one purpose; the gateway picks the sender of
each recipient (``gateway.outbound.pools``) and keeps a consent record per (pool, number).
Checked here: each sender's kind against its address, rates, the quiet-hours window, and
(in :func:`pool_problems`, across pools) unique names and addresses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Final, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, model_validator

from gateway.errors import ConfigProblem, ValidationError
from gateway.numbers import normalise_number

_QUIET: Final = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_NAME: Final = re.compile(r"^[a-z0-9_-]{1,64}$")
_SHORT_CODE: Final = re.compile(r"^\d{3,8}$")
_ALPHANUMERIC: Final = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ._-]{1,11}$")
#: Defaults of the pool keyword lists (``HELP`` is pool-only; STOP/START as ``[optout]``).
DEFAULT_HELP_KEYWORDS: Final = ("HELP", "INFO")


def _upper_words(value: object) -> object:
    if isinstance(value, list | tuple):
        return tuple(v.strip().upper() if isinstance(v, str) else v for v in value)
    return value


def _quiet(value: object) -> object:
    if isinstance(value, str) and (not _QUIET.match(value) or value[:5] == value[6:]):
        raise ValueError('must be "HH:MM-HH:MM" (24 h, start != end; may wrap midnight)')
    return value


def _pool_name(value: object) -> object:
    if isinstance(value, str) and not _NAME.match(value):
        raise ValueError("must be 1-64 of a-z, 0-9, _ and -")
    return value


PoolKeywords = Annotated[
    tuple[Annotated[str, Field(min_length=1)], ...], BeforeValidator(_upper_words)
]
Text = Annotated[str, Field(min_length=1, max_length=1000)]


def quiet_window(text: str) -> tuple[int, int]:
    """``"21:00-08:00"`` -> minutes after midnight of start and end ``(1260, 480)``."""
    start, end = text.split("-")
    return (
        int(start[:2]) * 60 + int(start[3:]),
        int(end[:2]) * 60 + int(end[3:]),
    )


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class PoolSender(_Section):
    """``[[pool.sender]]``: one sender address of a pool."""

    address: Annotated[str, Field(min_length=1, max_length=20)]
    kind: Literal["short_code", "long_code", "alphanumeric"]
    #: Can carry MMS content; default true, false for an alphanumeric id.
    mms: Annotated[bool, Strict()] | None = None
    #: Its own submissions per second; default 1 for a long code, else only the route's.
    tps: Annotated[float, Strict(), Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _kind_fits(self) -> Self:
        address = self.address
        if self.kind == "long_code":
            try:
                normalised = normalise_number(address, "address")
            except ValidationError as exc:
                raise ValueError(f"a long_code must be an E.164 number: {exc}") from None
            if normalised != address:
                raise ValueError(f"write the long_code in E.164 form: {normalised}")
        elif self.kind == "short_code" and not _SHORT_CODE.match(address):
            raise ValueError("a short_code must be 3-8 digits")
        elif self.kind == "alphanumeric":
            if not _ALPHANUMERIC.match(address):
                raise ValueError(
                    "an alphanumeric sender is 1-11 of A-Z, 0-9, space . _ - with a letter"
                )
            if self.mms:
                # Nothing can be sent back to an alphanumeric id (no reply, no STOP), and
                # carriers deliver MMS only from numbers that can receive.
                raise ValueError("an alphanumeric sender cannot receive, so it cannot send MMS")
        return self

    @property
    def carries_mms(self) -> bool:
        return self.mms if self.mms is not None else self.kind != "alphanumeric"

    @property
    def rate(self) -> float | None:
        """Its own rate (None: only the route's)."""
        if self.tps is not None:
            return self.tps
        return 1.0 if self.kind == "long_code" else None


class PoolConfig(_Section):
    """``[[pool]]``: a named set of senders with its consent rules and keyword texts."""

    name: Annotated[str, BeforeValidator(_pool_name)]
    #: ``opt_in``: only recipients with a recorded opt-in; ``opt_out``: all but opted-out.
    consent: Literal["opt_in", "opt_out"] = "opt_out"
    #: ``"HH:MM-HH:MM"`` in the recipient's local time; messages wait for its end.
    quiet_hours: Annotated[str, BeforeValidator(_quiet)] | None = None
    max_per_recipient_per_day: Annotated[int, Strict(), Field(ge=1)] | None = None
    help_text: Text | None = None
    stop_text: Text | None = None
    start_text: Text | None = None
    #: None: the ``[optout]`` lists (STOP/START) and HELP, INFO.
    stop_keywords: PoolKeywords | None = None
    start_keywords: PoolKeywords | None = None
    help_keywords: PoolKeywords | None = None
    sender: tuple[PoolSender, ...] = Field(min_length=1)


def pool_problems(pools: Sequence[PoolConfig]) -> list[ConfigProblem]:
    """Names unique; an address in one pool only (a keyword to it names one pool)."""
    problems: list[ConfigProblem] = []
    names: dict[str, int] = {}
    owners: dict[str, str] = {}
    for index, pool in enumerate(pools):
        if pool.name in names:
            problems.append(
                ConfigProblem(
                    f"pool[{index}].name", f"duplicate: already used by pool[{names[pool.name]}]"
                )
            )
        names.setdefault(pool.name, index)
        for number, sender in enumerate(pool.sender):
            where = f"pool[{index}].sender[{number}]"
            key = sender.address.lstrip("+").upper()
            if key in owners:
                problems.append(
                    ConfigProblem(f"{where}.address", f"already a sender of {owners[key]}")
                )
            owners.setdefault(key, f"pool[{index}]")
    return problems
