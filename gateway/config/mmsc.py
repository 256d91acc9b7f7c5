# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""``[[mmsc]]`` with ``[mmsc.retry]``: one carrier MMSC route, outbound and inbound."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, Strict, field_validator, model_validator

from gateway.config import rules
from gateway.config.values import (
    Cidr,
    Count,
    CrossCheckError,
    EnvStr,
    ExistingFile,
    Flag,
    HttpUrl,
    Name,
    NonNegative,
    Seconds,
    Secret,
    Section,
    Timeout,
    matching,
)
from protocol.versions import DEFAULT_VERSION, VERSIONS

Prefix = Annotated[str, matching(r"^\+?[0-9]{1,15}$", "must be digits, optionally after +")]
StatusCode = Annotated[str, matching(r"^[0-9]{4}$", "must be a 4-digit MM7 status code")]
StatusAction = Literal["retry", "retry_slow_down", "fail"]
FallbackCause = Literal["no_mms", "rejected", "failed", "expired"]


class RetrySection(Section):
    """``[mmsc.retry]``: back-off, validity and slow-down policy of one route."""

    max_attempts: Count = 10
    initial_backoff_seconds: Seconds = 1.0
    max_backoff_seconds: Seconds = 300.0
    multiplier: Annotated[float, Strict(), Field(ge=1.0)] = 2.0
    jitter: Annotated[float, Strict(), Field(ge=0.0, le=1.0)] = 0.2
    default_validity_seconds: Seconds = 86_400.0
    slow_down_factor: Annotated[float, Strict(), Field(gt=0.0, le=1.0)] = 0.5
    slow_down_recovery_seconds: Seconds = 30.0

    @model_validator(mode="after")
    def _backoff_order(self) -> Self:
        problems = rules.retry_problems(dict(self))
        if problems:
            raise CrossCheckError(problems)
        return self


class MmscConfig(Section):
    """``[[mmsc]]``: one carrier MMSC route (outbound SubmitReq and inbound callbacks)."""

    name: Name
    url: HttpUrl
    version: str = DEFAULT_VERSION
    vasp_id: str | None = None
    vas_id: str | None = None
    #: Default sender address: short code, long code (E.164) or alphanumeric id.
    sender: str | None = None
    username: str | None = None
    password: Secret | None = Field(default=None, repr=False)
    #: Submissions per second (token bucket); 0 = unlimited.
    tps: NonNegative = 10.0
    #: Token bucket depth; None = max(1, tps) (see ``effective_burst``).
    burst: Annotated[float, Strict(), Field(gt=0)] | None = None
    max_in_flight: Count = 4
    per_sender_tps: Annotated[float, Strict(), Field(gt=0)] | None = None
    max_message_bytes: Count = 614_400
    max_recipients_per_submit: Count = 1
    prefixes: tuple[Prefix, ...] = ()
    route_default: Flag = False
    timeout_seconds: Timeout = 30.0
    connect_timeout_seconds: Timeout = 5.0
    transfer_encoding: Literal["binary", "base64"] = "binary"
    inbound_username: EnvStr | None = None
    inbound_password: Secret | None = Field(default=None, repr=False)
    inbound_allow_ips: tuple[Cidr, ...] = ()
    #: ``"none"``: this route's callbacks are knowingly open (no credentials, allow-list
    #: or client certificate) even on a non-loopback MM7 listener; absent, that is an error.
    inbound_auth: Literal["none"] | None = None
    tls_ca_file: ExistingFile | None = None
    tls_cert_file: ExistingFile | None = None
    tls_key_file: ExistingFile | None = None
    tls_verify: Flag = True
    status_overrides: dict[StatusCode, StatusAction] = Field(default_factory=dict)
    retry: RetrySection = RetrySection()
    #: False: the route carries text only; media parts follow ``media_policy``.
    mms: Flag = True
    media_policy: Literal["adapt", "link", "reject"] = "adapt"
    max_image_pixels: Count | None = None
    allowed_types: tuple[str, ...] | None = None
    #: An animation that cannot fit even with frames dropped may be sent as its first
    #: frame (a still image); False: it goes to ``media_policy``'s fallback instead.
    allow_first_frame: Flag = True
    #: When a recipient cannot get the MMS: ``link`` (today's text + signed link over the
    #: MMSC on a no-MMS route), ``sms`` (one SMS through ``[sms]`` per recipient and cause,
    #: DESIGN.md §13), ``none`` (a no-MMS route refuses media).
    fallback: Literal["none", "link", "sms"] = "link"
    fallback_on: tuple[FallbackCause, ...] = ("no_mms", "rejected", "failed", "expired")
    #: Probe the MMSC (``HEAD`` of ``url``) after this many seconds without any exchange,
    #: so a dead MMSC opens the circuit before traffic does; 0 = never.
    idle_probe_seconds: NonNegative = 60.0

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: str) -> str:
        if value not in VERSIONS:
            raise ValueError(f"must be one of {', '.join(VERSIONS)}")
        return value

    @model_validator(mode="after")
    def _pairs(self) -> Self:
        problems = rules.mmsc_problems(dict(self))
        if problems:
            raise CrossCheckError(problems)
        return self

    @property
    def callbacks_authenticated(self) -> bool:
        """Whether the route itself checks who calls back (credentials or allow-list)."""
        return self.inbound_username is not None or bool(self.inbound_allow_ips)

    @property
    def effective_burst(self) -> float:
        """Token bucket depth: ``burst`` if set, else ``max(1, tps)``."""
        return self.burst if self.burst is not None else max(1.0, self.tps)
