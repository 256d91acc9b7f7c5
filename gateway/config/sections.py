# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""The sections besides routes and pools: ``[gateway]``, ``[listen]``, ``[store]``,
``[cluster]``, ``[logging]``, ``[[api_keys]]``, ``[webhooks]``, ``[optout]``, ``[sms]``."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.config import rules
from gateway.config.values import (
    MIB,
    Cidr,
    Count,
    CrossCheckError,
    ExistingFile,
    Flag,
    HostPort,
    HttpUrl,
    ListenAddress,
    Name,
    NonNegative,
    Seconds,
    Secret,
    Section,
    Timeout,
    resolve_env,
)
from protocol.limits import DEFAULT_LIMITS


class GatewaySection(Section):
    """``[gateway]``: storage, public URL and intake limits."""

    data_dir: Path = Path("./data")
    public_url: HttpUrl = "http://127.0.0.1:8080"
    media_url_ttl_seconds: Count = 604_800
    shutdown_grace_seconds: Seconds = 10.0
    max_queue_depth: Count = 100_000
    max_recipients_per_message: Count = 100
    #: Recipients per ``POST /v1/batches`` (bulk sends, committed in chunks).
    max_recipients_per_batch: Count = 100_000
    #: Media items per POST (each fetched URL is held in memory while the message is built).
    max_media_parts: Count = 10
    #: At least 1 KiB: a JSON body with a recipient and a short text needs a few hundred.
    max_body_bytes: Annotated[int, Strict(), Field(ge=1024)] = 5 * MIB
    media_fetch_timeout_seconds: Timeout = 10.0
    #: At least 1 KiB: no image or audio file we carry is smaller.
    media_fetch_max_bytes: Annotated[int, Strict(), Field(ge=1024)] = 5 * MIB
    allow_private_media_urls: Flag = False
    #: Key for signing media URLs; None: generated once and kept under ``data_dir``.
    signing_key: Secret | None = None


class ListenSection(Section):
    """``[listen]``: the three listeners (port 0 = any free port)."""

    api: ListenAddress = HostPort("127.0.0.1", 8080)
    mm7: ListenAddress = HostPort("127.0.0.1", 8081)
    ops: ListenAddress = HostPort("127.0.0.1", 9100)
    #: Slow-client limit on the API and MM7 listeners: a connection that sends no complete
    #: request headers within this many seconds of opening (or of its last answer: idle
    #: keep-alive) is closed, and so is one whose request body has not fully arrived this
    #: long after its headers.
    read_timeout_seconds: Timeout = 30.0
    #: Largest MM7 request body (the decoder gets the same limit). At least the largest
    #: SOAP envelope the decoder accepts; at most 64 MiB, as the body is held in memory.
    mm7_max_body_bytes: Annotated[
        int, Strict(), Field(ge=DEFAULT_LIMITS.max_xml_bytes, le=64 * MIB)
    ] = DEFAULT_LIMITS.max_body_bytes
    #: PEM certificate (chain) and key: the API and MM7 listeners serve HTTPS (reloaded on
    #: SIGHUP). None: plain HTTP.
    tls_cert_file: ExistingFile | None = None
    tls_key_file: ExistingFile | None = None
    #: CA bundle of the MMSCs' client certificates: the MM7 listener requires one (mTLS),
    #: and with it set every route's callbacks count as authenticated.
    mm7_client_ca_file: ExistingFile | None = None

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        problems = rules.listen_problems(dict(self))
        if problems:
            raise CrossCheckError(problems)
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.mm7_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("mm7_client_ca_file needs tls_cert_file and tls_key_file (HTTPS)")
        return self


def _store_url(value: object, info: ValidationInfo) -> object:
    """``env:VAR`` resolved first; then it must be a PostgreSQL URL."""
    value = resolve_env(value, info)
    if isinstance(value, str) and urlsplit(value).scheme not in {"postgresql", "postgres"}:
        raise ValueError("must be a postgresql:// URL (leave it out for SQLite in data_dir)")
    return value


#: May hold a password: a secret (prints as ``**********``).
StoreUrl = Annotated[SecretStr, BeforeValidator(_store_url)]


class StoreSection(Section):
    """``[store]``: where state lives, what is kept and for how long."""

    #: PostgreSQL shared by several instances; absent: SQLite under ``gateway.data_dir``.
    url: StoreUrl | None = Field(default=None, repr=False)
    #: Connections per instance (also the store operations it runs at once).
    pool_size: Annotated[int, Strict(), Field(ge=1, le=200)] = 10

    #: Final messages (with their batches, reports and webhook events), inbound messages,
    #: finished webhook events and unmatched reports older than this are purged, in small
    #: chunks; media no longer referenced goes too (kept at least as long as the media URL
    #: lifetime). 0 keeps everything forever.
    retention_days: NonNegative = 30.0


def _default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ClusterSection(Section):
    """``[cluster]``: this instance among several gateways sharing one store."""

    #: Names this instance in leases and heartbeats (hostname-pid when unset).
    instance_id: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        default_factory=_default_instance_id
    )
    #: Announce this instance this often; peers silent for 3 periods count as gone.
    heartbeat_seconds: Seconds = 5.0
    #: Claimed work (a batch in flight, a webhook event, an SMS) goes back to the queue
    #: when its instance has not renewed the lease (each heartbeat does) for this long.
    lease_seconds: Seconds = 30.0


LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class LoggingSection(Section):
    """``[logging]``: level, renderer and phone-number masking."""

    level: LogLevel = "info"
    format: Literal["auto", "json", "console"] = "auto"
    mask_numbers: Flag = True

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class ApiKeyConfig(Section):
    """``[[api_keys]]``: one REST client."""

    name: Name
    key: Secret = Field(repr=False)
    #: Default webhook for this key's messages (a message's ``callback_url`` wins).
    callback_url: HttpUrl | None = None
    #: HMAC key for webhooks; None = the API key itself (see ``webhook_signing_secret``).
    webhook_secret: Secret | None = Field(default=None, repr=False)
    #: ``admin`` keys may also log in to the operator console (``/console/``).
    role: Literal["client", "admin"] = "client"

    @field_validator("key")
    @classmethod
    def _key_not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @property
    def webhook_signing_secret(self) -> SecretStr:
        """The secret that signs this key's webhooks: ``webhook_secret``, else ``key``."""
        return self.webhook_secret if self.webhook_secret is not None else self.key


class WebhooksSection(Section):
    """``[webhooks]``: delivery of status and inbound events to applications."""

    max_attempts: Count = 12
    initial_backoff_seconds: Seconds = 1.0
    max_backoff_seconds: Seconds = 600.0
    give_up_after_seconds: Seconds = 86_400.0
    timeout_seconds: Timeout = 10.0
    #: Sends in flight to one destination (scheme, host, port), of the worker's 8: a
    #: receiver that hangs delays only its own events.
    per_destination_concurrency: Count = 4
    #: A message's own ``callback_url`` (set by the client, unlike an API key's) may point
    #: at loopback or private addresses; link-local and metadata addresses never.
    allow_private_urls: Flag = False

    @model_validator(mode="after")
    def _backoff_order(self) -> Self:
        problems = rules.webhooks_problems(dict(self))
        if problems:
            raise CrossCheckError(problems)
        return self


def _upper_words(value: object) -> object:
    if isinstance(value, list | tuple):
        return tuple(v.strip().upper() if isinstance(v, str) else v for v in value)
    return value


Keywords = Annotated[tuple[Annotated[str, Field(min_length=1)], ...], BeforeValidator(_upper_words)]


class OptoutSection(Section):
    """``[optout]``: STOP/START keywords in inbound MMS manage a per-sender block list."""

    enabled: Flag = True
    stop_keywords: Keywords = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
    start_keywords: Keywords = ("START", "UNSTOP")
    #: Reply sent (over the MMSC the STOP came from, from the short code it was sent to)
    #: after a STOP-family keyword; None: no reply.
    confirmation_text: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    #: The same after a START-family keyword.
    start_confirmation_text: Annotated[str, Field(min_length=1, max_length=1000)] | None = None

    @model_validator(mode="after")
    def _disjoint(self) -> Self:
        problems = rules.optout_problems(dict(self))
        if problems:
            raise CrossCheckError(problems)
        return self


class SmsSection(Section):
    """``[sms]``: the SMS gateway fallback SMS go through (Kannel's sendsms interface)."""

    kind: Literal["kannel"] = "kannel"
    sendsms_url: HttpUrl
    username: str
    password: Secret = Field(repr=False)
    #: Sender (``from``) of fallback SMS; None: the message's sender, else the route's.
    sender: str | None = None
    #: sendsms calls per second.
    tps: Annotated[float, Strict(), Field(gt=0)] = 10.0
    timeout_seconds: Seconds = 10.0
    max_attempts: Count = 8
    initial_backoff_seconds: Seconds = 1.0
    max_backoff_seconds: Seconds = 300.0
    #: Longest SMS we send, in segments; the text is shortened, never the link.
    max_segments: Annotated[int, Strict(), Field(ge=1, le=10)] = 3
    #: A sendsms call that may have reached Kannel (timeout, crash) is repeated only after
    #: this long without a Kannel report for it: a report proves it was sent.
    resend_after_seconds: Seconds = 60.0
    #: Who may call ``GET /sms/dlr`` besides presenting the per-SMS token (empty: any).
    dlr_allow_ips: tuple[Cidr, ...] = ()

    @model_validator(mode="after")
    def _backoff_order(self) -> Self:
        if self.max_backoff_seconds < self.initial_backoff_seconds:
            raise ValueError("max_backoff_seconds must be >= initial_backoff_seconds")
        return self
