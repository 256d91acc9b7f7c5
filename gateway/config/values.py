# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Value types and validators every config section uses, and the sections' base model.

Secrets are ``SecretStr`` (they print as ``**********``) and may be written ``env:VAR``
to be read from the environment given to validation (``ENVIRON_CONTEXT_KEY``).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final
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
)

from gateway.errors import ConfigProblem

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


def resolve_env(value: object, info: ValidationInfo) -> object:
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


Secret = Annotated[SecretStr, BeforeValidator(resolve_env)]
#: Not secret, but per deployment (a carrier account name): ``env:VAR`` allowed too.
EnvStr = Annotated[str, BeforeValidator(resolve_env)]
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


def matching(pattern: str, explain: str) -> BeforeValidator:
    regex = re.compile(pattern)

    def check(value: object) -> object:
        if isinstance(value, str) and not regex.match(value):
            raise ValueError(explain)
        return value

    return BeforeValidator(check)


Name = Annotated[str, matching(r"^[a-z0-9_-]{1,64}$", "must be 1-64 of a-z, 0-9, _ and -")]
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


class Section(BaseModel):
    """Base of every section: frozen, unknown keys refused (a misspelt key is an error)."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class CrossCheckError(ValueError):
    """Problems that involve several entries; each carries its own key path."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = tuple(problems)
