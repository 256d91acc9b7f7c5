# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Rules that involve more than one key of a section, written once over plain values.

The models run them after their fields validate; ``load.py`` runs the same functions on
the raw TOML tables (defaults filled in) when single-field errors stopped pydantic before
the models' own checks, so one ``check-config`` run reports everything. Each rule looks
only at values of the right type (a wrong type is already a single-field problem) and
returns problems with key paths relative to its section.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gateway.errors import ConfigProblem
from protocol.limits import RECIPIENT_ENVELOPE_BYTES, SUBMIT_ENVELOPE_BYTES

Values = Mapping[str, object]

#: Room a SubmitReq needs besides its envelope: a short text part. Below this a route
#: could carry no message at all, not even text only.
MIN_CONTENT_BYTES = 512


def _number(values: Values, key: str) -> float | None:
    value = values.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _backoff_order(values: Values) -> list[ConfigProblem]:
    initial = _number(values, "initial_backoff_seconds")
    maximum = _number(values, "max_backoff_seconds")
    if initial is not None and maximum is not None and maximum < initial:
        return [ConfigProblem("max_backoff_seconds", "must be >= initial_backoff_seconds")]
    return []


def retry_problems(values: Values) -> list[ConfigProblem]:
    """``[mmsc.retry]``."""
    return _backoff_order(values)


def webhooks_problems(values: Values) -> list[ConfigProblem]:
    """``[webhooks]``."""
    return _backoff_order(values)


def min_message_bytes(recipients_per_submit: int) -> int:
    """Smallest ``max_message_bytes`` that leaves a SubmitReq room for a short text."""
    extra = RECIPIENT_ENVELOPE_BYTES * max(0, recipients_per_submit - 1)
    return SUBMIT_ENVELOPE_BYTES + extra + MIN_CONTENT_BYTES


def mmsc_problems(values: Values) -> list[ConfigProblem]:
    """``[[mmsc]]`` (its ``retry`` table has its own rules)."""
    problems: list[ConfigProblem] = []
    if values.get("tls_key_file") is not None and values.get("tls_cert_file") is None:
        problems.append(ConfigProblem("tls_key_file", "needs tls_cert_file"))
    user, password = values.get("inbound_username"), values.get("inbound_password")
    if (user is None) != (password is None):
        missing = "inbound_password" if password is None else "inbound_username"
        problems.append(
            ConfigProblem(missing, "required: inbound_username and inbound_password go together")
        )
    if values.get("inbound_auth") == "none" and (user or values.get("inbound_allow_ips")):
        problems.append(
            ConfigProblem(
                "inbound_auth",
                '"none" says callbacks are open: it contradicts inbound_username and '
                "inbound_allow_ips (drop one or the other)",
            )
        )
    size = values.get("max_message_bytes")
    recipients = values.get("max_recipients_per_submit")
    if not isinstance(recipients, int) or isinstance(recipients, bool) or recipients < 1:
        recipients = 1  # its own problem is reported on the key
    if isinstance(size, int) and not isinstance(size, bool):
        floor = min_message_bytes(recipients)
        if size < floor:
            problems.append(
                ConfigProblem(
                    "max_message_bytes",
                    f"must be >= {floor}: the SubmitReq envelope for "
                    f"{recipients} recipient(s) takes "
                    f"{floor - MIN_CONTENT_BYTES} bytes, plus {MIN_CONTENT_BYTES} for a short text",
                )
            )
    tps, burst = _number(values, "tps"), _number(values, "burst")
    if tps is not None and tps > 0 and burst is not None and burst < 1:
        # The bucket would never hold the one token a SubmitReq takes: nothing is ever sent.
        problems.append(ConfigProblem("burst", "must be >= 1 when tps > 0"))
    return problems


_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - compared, not bound


def _split_address(value: object) -> tuple[str, int] | None:
    text = str(value) if value is not None else ""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) == 0:
        return None  # malformed (its own problem) or port 0: the OS picks a free port
    return host.strip("[]").lower(), int(port)


def listen_problems(values: Values) -> list[ConfigProblem]:
    """``[listen]``: two listeners cannot bind the same address."""
    problems: list[ConfigProblem] = []
    seen: list[tuple[str, tuple[str, int]]] = []
    for name in ("api", "mm7", "ops"):
        address = _split_address(values.get(name))
        if address is None:
            continue
        for other, (host, port) in seen:
            same_host = host == address[0] or {host, address[0]} & _WILDCARD_HOSTS
            if port == address[1] and same_host:
                problems.append(ConfigProblem(name, f"same address as listen.{other}"))
                break
        seen.append((name, address))
    return problems


def _words(value: object) -> set[str]:
    if not isinstance(value, list | tuple):
        return set()
    return {v.strip().upper() for v in value if isinstance(v, str)}


def optout_problems(values: Values) -> list[ConfigProblem]:
    """``[optout]``: a keyword cannot both stop and start messages."""
    both = sorted(_words(values.get("stop_keywords")) & _words(values.get("start_keywords")))
    if both:
        return [ConfigProblem("start_keywords", f"{', '.join(both)} also in stop_keywords")]
    return []


def under(prefix: str, problems: Iterable[ConfigProblem]) -> list[ConfigProblem]:
    """``problems`` with key paths relative to ``prefix`` made absolute."""

    def path(key: str) -> str:
        return f"{prefix}.{key}" if prefix and key else prefix or key

    return [ConfigProblem(path(p.key_path), p.message) for p in problems]
