# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""The gateway's configuration model: every key, its type, default, bounds and meaning.

Frozen pydantic models mirror the TOML sections of ``config/gateway.toml`` one to one
(``[gateway]``, ``[listen]``, ``[logging]``, ``[[api_keys]]``, ``[[mmsc]]`` with
``[mmsc.retry]``, ``[webhooks]``, ``[optout]``, ``[[pool]]``). Unknown keys are rejected
(``extra="forbid"``) so a misspelt key never silently falls back to its default. Numbers
and booleans are strict (TOML has real types; ``"10"`` for a number is a mistake worth
reporting). Secrets are ``SecretStr`` (they print as ``**********``) and may be written
``env:VAR`` to be read from the environment given to validation.

Reading files and turning validation errors into key-path messages is
``gateway.config.load``'s job; this module only says what a valid configuration is.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    SecretStr,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.config import rules
from gateway.config.callbacks import open_callback_problems
from gateway.config.pools import PoolConfig, pool_problems
from gateway.errors import ConfigProblem
from protocol.limits import DEFAULT_LIMITS
from protocol.versions import DEFAULT_VERSION, VERSIONS

MIB: Final = 1024 * 1024
#: Key of the validation context holding the environment used for ``env:VAR`` secrets.
ENVIRON_CONTEXT_KEY: Final = "environ"
ENV_PREFIX: Final = "env:"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s:\[\]]+)):(?P<port>\d{1,5})$")


# -- value types --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HostPort:
    """A listener address; ``port`` 0 asks the OS for a free port (tests)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> HostPort:
        """Parse ``HOST:PORT`` (``[v6]:PORT`` for IPv6).

        Raises:
            ValueError: not of that form, or the port is over 65535.
        """
        match = _HOST_PORT.match(text)
        if match is None:
            raise ValueError(f"must be HOST:PORT (e.g. 127.0.0.1:8080), got {text!r}")
        port = int(match["port"])
        if port > 65535:
            raise ValueError(f"port {port} is over 65535")
        return cls(match["v6"] or match["host"], port)


def _host_port(value: object) -> HostPort:
    if isinstance(value, HostPort):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string HOST:PORT")  # noqa: TRY004 - pydantic wants ValueError
    return HostPort.parse(value)


def _resolve_env(value: object, info: ValidationInfo) -> object:
    """``env:VAR`` → the variable's value from the validation context (or ``os.environ``)."""
    if not isinstance(value, str) or not value.startswith(ENV_PREFIX):
        return value
    name = value[len(ENV_PREFIX) :]
    if not _ENV_NAME.match(name):
        raise ValueError(f"{value!r} does not name an environment variable")
    context = info.context if isinstance(info.context, Mapping) else {}
    environ: Mapping[str, str] = context.get(ENVIRON_CONTEXT_KEY, os.environ)
    resolved = environ.get(name)
    if resolved is None:
        raise ValueError(f"environment variable {name} is not set")
    return resolved


def _http_url(value: object) -> object:
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
    return value


def _existing_file(value: object) -> object:
    if isinstance(value, str | Path) and not Path(value).is_file():
        raise ValueError(f"file not found: {value}")
    return value


Secret = Annotated[SecretStr, BeforeValidator(_resolve_env)]
#: Not secret, but per deployment (a carrier account name): ``env:VAR`` allowed too.
EnvStr = Annotated[str, BeforeValidator(_resolve_env)]
ListenAddress = Annotated[HostPort, PlainValidator(_host_port), PlainSerializer(str)]
HttpUrl = Annotated[str, BeforeValidator(_http_url)]
ExistingFile = Annotated[Path, BeforeValidator(_existing_file)]
Seconds = Annotated[float, Strict(), Field(gt=0)]
#: A network timeout: under 100 ms not even a loopback exchange on a loaded host is
#: reliable, so a smaller value only turns every attempt into a failure.
Timeout = Annotated[float, Strict(), Field(ge=0.1)]
NonNegative = Annotated[float, Strict(), Field(ge=0)]
Count = Annotated[int, Strict(), Field(ge=1)]
Flag = Annotated[bool, Strict()]


def _matching(pattern: str, explain: str) -> BeforeValidator:
    regex = re.compile(pattern)

    def check(value: object) -> object:
        if isinstance(value, str) and not regex.match(value):
            raise ValueError(explain)
        return value

    return BeforeValidator(check)


Name = Annotated[str, _matching(r"^[a-z0-9_-]{1,64}$", "must be 1-64 of a-z, 0-9, _ and -")]
Prefix = Annotated[str, _matching(r"^\+?[0-9]{1,15}$", "must be digits, optionally after +")]
StatusCode = Annotated[str, _matching(r"^[0-9]{4}$", "must be a 4-digit MM7 status code")]
StatusAction = Literal["retry", "retry_slow_down", "fail"]
FallbackCause = Literal["no_mms", "rejected", "failed", "expired"]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(value: object) -> Network:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a CIDR string such as 10.0.0.0/8")  # noqa: TRY004 - pydantic
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or CIDR network") from None


Cidr = Annotated[Network, PlainValidator(_network), PlainSerializer(str)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


# -- sections -----------------------------------------------------------------------------
class GatewaySection(_Section):
    """``[gateway]``: storage, public URL and intake limits."""

    data_dir: Path = Path("./data")
    public_url: HttpUrl = "http://127.0.0.1:8080"
    media_url_ttl_seconds: Count = 604_800
    shutdown_grace_seconds: Seconds = 10.0
    max_queue_depth: Count = 100_000
    max_recipients_per_message: Count = 100
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


class ListenSection(_Section):
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
    value = _resolve_env(value, info)
    if isinstance(value, str) and urlsplit(value).scheme not in {"postgresql", "postgres"}:
        raise ValueError("must be a postgresql:// URL (leave it out for SQLite in data_dir)")
    return value


#: May hold a password: a secret (prints as ``**********``).
StoreUrl = Annotated[SecretStr, BeforeValidator(_store_url)]


class StoreSection(_Section):
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


class ClusterSection(_Section):
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


class LoggingSection(_Section):
    """``[logging]``: level, renderer and phone-number masking."""

    level: LogLevel = "info"
    format: Literal["auto", "json", "console"] = "auto"
    mask_numbers: Flag = True

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class ApiKeyConfig(_Section):
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


class RetrySection(_Section):
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


class MmscConfig(_Section):
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


class WebhooksSection(_Section):
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


class OptoutSection(_Section):
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


class SmsSection(_Section):
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


# -- the whole configuration ----------------------------------------------------------------
class CrossCheckError(ValueError):
    """Problems that involve several entries; each carries its own key path."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = tuple(problems)


def duplicate_problems(
    section: str, field: str, values: Sequence[object], *, show: bool = True
) -> list[ConfigProblem]:
    """One problem per repeated value: ``mmsc[2].name: duplicate of mmsc[0].name``."""
    first: dict[object, int] = {}
    problems: list[ConfigProblem] = []
    for index, value in enumerate(values):
        if value is None:
            continue
        if value in first:
            shown = f" {value!r}" if show else ""
            problems.append(
                ConfigProblem(
                    f"{section}[{index}].{field}",
                    f"duplicate{shown}: already used by {section}[{first[value]}]",
                )
            )
        else:
            first[value] = index
    return problems


def default_route_problems(flags: Sequence[object]) -> list[ConfigProblem]:
    """At most one ``[[mmsc]]`` may say ``route_default = true``."""
    marked = [i for i, flag in enumerate(flags) if flag is True]
    return [
        ConfigProblem(
            f"mmsc[{i}].route_default", f"only one route may be the default (mmsc[{marked[0]}] is)"
        )
        for i in marked[1:]
    ]


def shared_store_problems(
    store: StoreSection, cluster: ClusterSection, gateway: GatewaySection
) -> list[ConfigProblem]:
    """A shared store needs one media-link key for all instances and leases that heartbeats
    renew in time."""
    if store.url is None:
        return []
    problems = []
    if gateway.signing_key is None:
        # A key generated per data_dir would make one instance's media links fail on
        # every other instance.
        problems.append(
            ConfigProblem(
                "gateway.signing_key",
                "required with a shared store (store.url): every instance must sign media "
                "links with the same key",
            )
        )
    if cluster.lease_seconds < 2 * cluster.heartbeat_seconds:
        problems.append(
            ConfigProblem(
                "cluster.lease_seconds",
                "must be at least twice cluster.heartbeat_seconds (heartbeats renew leases)",
            )
        )
    return problems


class GatewayConfig(_Section):
    """The whole validated configuration of one gateway process."""

    gateway: GatewaySection = GatewaySection()
    listen: ListenSection = ListenSection()
    store: StoreSection = StoreSection()
    cluster: ClusterSection = ClusterSection()
    logging: LoggingSection = LoggingSection()
    api_keys: tuple[ApiKeyConfig, ...] = ()
    mmsc: tuple[MmscConfig, ...] = Field(min_length=1)
    webhooks: WebhooksSection = WebhooksSection()
    optout: OptoutSection = OptoutSection()
    sms: SmsSection | None = None
    #: ``[[pool]]``: sender pools with consent (``gateway.config.pools``).
    pool: tuple[PoolConfig, ...] = ()

    @model_validator(mode="after")
    def _cross_checks(self) -> Self:
        problems = [
            ConfigProblem(f"mmsc[{i}].fallback", 'fallback = "sms" needs an [sms] section')
            for i, m in enumerate(self.mmsc)
            if m.fallback == "sms" and self.sms is None
        ]
        problems += [
            *duplicate_problems("mmsc", "name", [m.name for m in self.mmsc]),
            *default_route_problems([m.route_default for m in self.mmsc]),
            *duplicate_problems("api_keys", "name", [k.name for k in self.api_keys]),
            *duplicate_problems(
                "api_keys", "key", [k.key.get_secret_value() for k in self.api_keys], show=False
            ),
            *open_callback_problems(self.listen, self.mmsc),
            *pool_problems(self.pool),
            *shared_store_problems(self.store, self.cluster, self.gateway),
        ]
        if problems:
            raise CrossCheckError(problems)
        return self

    def route(self, name: str) -> MmscConfig:
        """The ``[[mmsc]]`` entry called ``name``.

        Raises:
            KeyError: no route has that name.
        """
        for mmsc in self.mmsc:
            if mmsc.name == name:
                return mmsc
        raise KeyError(name)

    @classmethod
    def default_for_demo(
        cls,
        data_dir: Path | str,
        mmsc_url: str,
        *,
        api_key: str = "demo-key",
        mmsc: Mapping[str, Any] | None = None,
        **sections: Mapping[str, Any],
    ) -> GatewayConfig:
        """A valid configuration built in code: one route ``mock`` to ``mmsc_url``.

        Args:
            data_dir: where the store and media live.
            mmsc_url: the MMSC's MM7 endpoint (the bundled mock's ``/mm7``).
            api_key: the single API key (named ``demo``).
            mmsc: overrides for the ``[[mmsc]]`` entry (``tps``, ``max_in_flight``, ...).
            sections: overrides merged into the other sections, e.g.
                ``logging={"level": "debug"}``.
        """
        route: dict[str, Any] = {
            "name": "mock",
            "url": mmsc_url,
            "vasp_id": "demo-vasp",
            "vas_id": "demo",
            "sender": "12345",
            "tps": 0.0,
            "max_in_flight": 16,
            "route_default": True,
            "inbound_username": "mmsc",
            "inbound_password": "mmsc-secret",
        }
        route.update(mmsc or {})
        address = "127.0.0.1:0"  # free ports; pass listen={...} to choose
        data: dict[str, Any] = {
            "gateway": {"data_dir": str(data_dir)},
            "listen": {"api": address, "mm7": address, "ops": address},
            "api_keys": [{"name": "demo", "key": api_key}],
            "mmsc": [route],
        }
        for section, values in sections.items():
            data[section] = {**data.get(section, {}), **values}
        return cls.model_validate(data, context={ENVIRON_CONTEXT_KEY: {}})
