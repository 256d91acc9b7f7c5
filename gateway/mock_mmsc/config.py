"""Settings of the mock MMSC: one frozen dataclass, the key table, TOML loading.

Theory of operation: ``KEYS`` is the one table of settings. Each entry names a config
key, the command-line flag derived from it (``dr_delay`` ↔ ``--dr-delay``), a parser that
accepts either the flag's text form (``"3000=0.01,4006=0.02"``) or the native TOML value
(a table, a number), and whether ``POST /admin/config`` may change it at run time. Values
are applied in order: defaults, then the config file, then flags. An unknown or invalid
key raises ``MockConfigError`` naming the key, never a silent default.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from protocol import VERSIONS

#: Where ``/admin/deliver`` finds named media fixtures when running from a source tree.
DEFAULT_MEDIA_DIR: Final = Path(__file__).resolve().parents[2] / "fixtures" / "media"

FAULT_STYLES: Final = ("fault", "rsp")
#: MMStatus values a delivery report may carry (TS 23.140 §8.4.2.2).
DR_STATUSES: Final = (
    "Retrieved",
    "Rejected",
    "Expired",
    "Indeterminate",
    "Forwarded",
    "Unrecognised",
    "Deferred",
    "DeliveryConditionNotMet",
)


class MockConfigError(ValueError):
    """A setting is unknown or invalid; ``key`` names it for the one-line error."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.detail = message


@dataclass(frozen=True, slots=True, kw_only=True)
class MockSettings:
    """Everything the mock MMSC does, fault injection included. Defaults: a happy MMSC."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 9090
    #: Where delivery reports, DeliverReq and ReadReplyReq are POSTed (the VASP's MM7 URL).
    vasp_url: str | None = None
    #: HTTP Basic credentials required from the VASP; ``None`` leaves ``/mm7`` open.
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    callback_username: str | None = None
    callback_password: str | None = field(default=None, repr=False)
    #: Schema version to answer in; ``None`` echoes the request's (when it is a known one).
    version: str | None = None
    dr_delay: float = 1.0
    dr_outcomes: tuple[tuple[str, float], ...] = (("Retrieved", 1.0),)
    #: Accepted requests per second on ``/mm7``; above it the answer is 4006. ``None``: no limit.
    tps: float | None = None
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    #: (status code, probability) pairs drawn for every otherwise acceptable request.
    fail_rate: tuple[tuple[int, float], ...] = ()
    http_error_rate: float = 0.0
    drop_rate: float = 0.0
    record: Path | None = None
    seed: int | None = None
    max_message_bytes: int | None = None
    max_recipients: int | None = None
    #: ``fault``: status errors as a SOAP Fault carrying RSErrorRsp, HTTP 500 (SOAP 1.1).
    #: ``rsp``: HTTP 200 with the matching ``…Rsp`` holding the error status.
    fault_style: str = "fault"
    #: Accept SubmitReqs without naming a MessageID in the SubmitRsp (some MMSCs do).
    omit_message_id: bool = False
    callback_attempts: int = 6
    callback_backoff: float = 1.0
    callback_max_backoff: float = 30.0
    callback_timeout: float = 10.0
    media_dir: Path = DEFAULT_MEDIA_DIR
    #: Seconds of per-second submit counts and number of recent messages in ``/admin/stats``.
    stats_window: int = 60
    stats_last: int = 50


# -- value parsers: each takes the raw value (flag text or TOML value) and returns the field(s)


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("expected a non-empty string")
    return value


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise TypeError("expected a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        number = float(value.strip())
    else:
        raise TypeError("expected a number")
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"expected a finite number >= 0, got {value!r}")
    return number


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError("expected an integer")
    number = int(value)
    if number < 0:
        raise ValueError(f"expected an integer >= 0, got {value!r}")
    return number


def _positive_int(value: object) -> int:
    number = _integer(value)
    if number < 1:
        raise ValueError(f"expected an integer >= 1, got {value!r}")
    return number


def _probability(value: object) -> float:
    number = _number(value)
    if number > 1:
        raise ValueError(f"expected a probability between 0 and 1, got {value!r}")
    return number


def _pairs(value: object) -> list[tuple[str, object]]:
    """``"A=0.1,B=0.2"``, a table ``{A = 0.1}`` or ``[[A, 0.1]]`` as (name, value) pairs."""
    if isinstance(value, Mapping):
        return [(str(k), v) for k, v in value.items()]
    if isinstance(value, list | tuple):  # [[3000, 0.5], ...] from JSON or Python callers
        if not all(isinstance(item, list | tuple) and len(item) == 2 for item in value):
            raise TypeError("expected [NAME, P] pairs")
        return [(str(name), p) for name, p in value]
    if isinstance(value, str):
        pairs: list[tuple[str, object]] = []
        for item in value.split(","):
            if not item.strip():
                continue
            name, sep, number = item.partition("=")
            if not sep:
                raise ValueError(f"expected NAME=P, got {item.strip()!r}")
            pairs.append((name.strip(), number.strip()))
        return pairs
    raise TypeError("expected 'NAME=P,...' or a table")


def _listen(value: object) -> dict[str, Any]:
    host, sep, port = _text(value).rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return {"listen_host": host.strip("[]"), "listen_port": int(port)}


def _url(value: object) -> str:
    url = _text(value)
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
    return url


def _version(value: object) -> str | None:
    text = _text(value)
    if text == "echo":
        return None
    if text not in VERSIONS:
        raise ValueError(f"unknown MM7 version {text!r} (known: echo, {', '.join(VERSIONS)})")
    return text


def _dr_outcomes(value: object) -> tuple[tuple[str, float], ...]:
    outcomes = tuple((name, _probability(p)) for name, p in _pairs(value))
    for name, _ in outcomes:
        if name not in DR_STATUSES:
            raise ValueError(f"unknown MMStatus {name!r} (known: {', '.join(DR_STATUSES)})")
    if not outcomes or sum(p for _, p in outcomes) <= 0:
        raise ValueError("needs at least one outcome with a probability above 0")
    return outcomes


def _fail_rate(value: object) -> tuple[tuple[int, float], ...]:
    rates: list[tuple[int, float]] = []
    for code, p in _pairs(value):
        if not code.isdigit() or not 1000 <= int(code) <= 9999:
            raise ValueError(f"expected a 4-digit MM7 status code, got {code!r}")
        rates.append((int(code), _probability(p)))
    if sum(p for _, p in rates) > 1 + 1e-9:
        raise ValueError("the probabilities add up to more than 1")
    return tuple(rates)


def _latency(value: object) -> dict[str, Any]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"latency_ms": _number(value), "latency_jitter_ms": 0.0}
    ms, _, jitter = _text(value).partition(",")
    return {"latency_ms": _number(ms), "latency_jitter_ms": _number(jitter or 0)}


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false", "yes", "no", "1", "0"}:
        return value.lower() in {"true", "yes", "1"}
    raise TypeError("expected true or false")


def _fault_style(value: object) -> str:
    style = _text(value)
    if style not in FAULT_STYLES:
        raise ValueError(f"expected one of {', '.join(FAULT_STYLES)}, got {style!r}")
    return style


def _path(value: object) -> Path:
    return Path(_text(value))


@dataclass(frozen=True, slots=True)
class Key:
    """One setting: how to parse it, its flag's help text, and whether it is a fault knob."""

    parse: Callable[[object], Any]
    help: str
    metavar: str = ""
    #: May ``POST /admin/config`` change it while running?
    runtime: bool = False


KEYS: Final[dict[str, Key]] = {
    "listen": Key(_listen, "address to listen on (default 127.0.0.1:9090)", "HOST:PORT"),
    "vasp_url": Key(_url, "VASP MM7 URL that receives DRs, DeliverReq, ReadReplyReq", "URL"),
    "username": Key(_text, "HTTP Basic user required on /mm7 (none: open)", "USER"),
    "password": Key(_text, "HTTP Basic password required on /mm7", "PASSWORD"),
    "callback_username": Key(_text, "HTTP Basic user presented on callbacks", "USER"),
    "callback_password": Key(_text, "HTTP Basic password presented on callbacks", "PASSWORD"),
    "version": Key(
        _version, "MM7 schema version to answer in, or 'echo' (default)", "VERSION", runtime=True
    ),
    "dr_delay": Key(_number, "seconds before delivery reports are sent", "SECONDS", runtime=True),
    "dr_outcomes": Key(
        _dr_outcomes,
        "MMStatus weights, e.g. Retrieved=0.9,Rejected=0.05",
        "STATUS=P,...",
        runtime=True,
    ),
    "tps": Key(
        _number, "accepted requests per second, over it 4006 (0: no limit)", "N", runtime=True
    ),
    "latency": Key(
        _latency, "answer delay in ms, optionally +/- jitter", "MS[,JITTER_MS]", runtime=True
    ),
    "fail_rate": Key(
        _fail_rate, "status codes to inject, e.g. 3000=0.01", "CODE=P,...", runtime=True
    ),
    "http_error_rate": Key(_probability, "probability of a bare HTTP 500", "P", runtime=True),
    "drop_rate": Key(_probability, "probability of closing without an answer", "P", runtime=True),
    "record": Key(_path, "write every raw request/response to this directory", "DIR"),
    "seed": Key(_integer, "seed for reproducible fault and outcome draws and ids", "N"),
    "max_message_bytes": Key(
        _integer, "larger requests get status 2004 (0: no limit)", "BYTES", runtime=True
    ),
    "max_recipients": Key(
        _integer, "more recipients get status 3003 (0: no limit)", "N", runtime=True
    ),
    "fault_style": Key(
        _fault_style,
        "status errors as 'fault' (HTTP 500) or 'rsp' (HTTP 200)",
        "STYLE",
        runtime=True,
    ),
    "omit_message_id": Key(
        _flag, "accept SubmitReqs without a MessageID in the SubmitRsp", "BOOL", runtime=True
    ),
    "callback_attempts": Key(
        _positive_int, "attempts per callback before giving up", "N", runtime=True
    ),
    "callback_backoff": Key(
        _number, "first retry delay, doubled per attempt", "SECONDS", runtime=True
    ),
    "callback_max_backoff": Key(_number, "cap of the retry delay", "SECONDS", runtime=True),
    "callback_timeout": Key(_number, "timeout of one callback POST", "SECONDS", runtime=True),
    "media_dir": Key(_path, "directory of named media fixtures for /admin/deliver", "DIR"),
    "stats_window": Key(_positive_int, "seconds of submit rate kept in /admin/stats", "N"),
    "stats_last": Key(_positive_int, "recent messages kept in /admin/stats", "N", runtime=True),
}


def parse_value(key: str, value: object) -> dict[str, Any]:
    """Parse one setting into the ``MockSettings`` fields it sets."""
    spec = KEYS.get(key)
    if spec is None:
        raise MockConfigError(key, "unknown key")
    try:
        parsed = spec.parse(value)
    except (TypeError, ValueError) as exc:
        raise MockConfigError(key, str(exc)) from None
    if isinstance(parsed, dict):
        return parsed
    if key in {"tps", "max_message_bytes", "max_recipients"} and parsed == 0:
        parsed = None  # 0 means "no limit", which reads better in a config than omitting it
    return {key: parsed}


def apply(
    settings: MockSettings, values: Mapping[str, object], *, runtime_only: bool = False
) -> MockSettings:
    """Return ``settings`` with ``values`` (key -> raw value) applied.

    Raises:
        MockConfigError: a key is unknown, not changeable at run time (``runtime_only``),
            or its value is invalid.
    """
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if runtime_only and key in KEYS and not KEYS[key].runtime:
            raise MockConfigError(key, "cannot be changed while running")
        changes.update(parse_value(key, value))
    result = dataclasses.replace(settings, **changes)
    if (result.username is None) != (result.password is None):
        raise MockConfigError("password", "username and password must be given together")
    return result


def load_toml(path: Path) -> dict[str, object]:
    """Read a mock config file; raises ``MockConfigError`` naming the problem."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise MockConfigError(str(path), exc.strerror or str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise MockConfigError(str(path), f"invalid TOML: {exc}") from None
    # Accept the settings at top level or under a [mock_mmsc] table (shared config files).
    table = data.get("mock_mmsc", data) if set(data) <= {"mock_mmsc"} else data
    if not isinstance(table, dict):
        raise MockConfigError("mock_mmsc", "expected a table")
    return table
