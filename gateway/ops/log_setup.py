# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Logging: structlog JSON lines (or a console renderer on a TTY) for our logs and stdlib's.

``configure_logging()`` is the one place logging is set up. One processor chain renders
both structlog events and stdlib records (``aiohttp.access``, ``asyncio``), so every line
has the same shape: ISO-8601 UTC ``timestamp``, ``level``, ``logger``, ``event`` and the
context bound with ``structlog.contextvars.bound_contextvars`` (``message_id``, ``mmsc``,
``transaction_id``, ``mm7_message_id``, ``request_id``).

A redaction processor runs before rendering, so nothing below it can leak: values of
secret-named keys become ``[redacted]``, bytes become ``[N bytes]`` (no media in logs),
and phone numbers are masked to their last four digits (``+1******4567``) in the number
keys, in free-text keys and in the event text, unless ``mask_numbers`` is off.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, Final, TextIO

import structlog
from structlog.typing import EventDict, Processor

REDACTED: Final = "[redacted]"
#: Keys whose values never reach the output (compared case-insensitively, ``-`` as ``_``).
SECRET_KEYS: Final = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "key",
        "api_key",
        "apikey",
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "token",
        "signature",
        "signing_key",
        "data",
        "body",
        "content",
    }
)
#: Key suffixes that mark a secret too (``inbound_password``, ``webhook_secret``).
_SECRET_SUFFIXES: Final = ("_password", "_secret", "_token", "_api_key", "_signing_key")
#: Keys that hold phone numbers (a string or a list of them).
NUMBER_KEYS: Final = frozenset(
    {"to", "from", "from_", "recipient", "recipients", "sender", "number", "msisdn", "cc", "bcc"}
)
#: Free-text keys that may quote a number (an exception text, a peer's status text).
_TEXT_KEYS: Final = frozenset({"event", "error", "reason", "status_text", "detail", "exception"})
#: 7+ digits, an optional leading ``+``, single spaces between digit groups. Not dashes:
#: ``2026-11-23`` is a date far more often than ``202-555-0101`` is a number in our logs.
_NUMBER: Final = re.compile(r"(?<![\w*])\+?\d(?: ?\d){6,}(?!\w)")
_MAX_DEPTH: Final = 4
_HANDLER_MARK: Final = "_mm7gw_handler"


def mask_number(text: str) -> str:
    """Mask every phone-number-like run in ``text`` down to its last four digits.

    ``+12025554567`` → ``+1******4567`` (the ``+`` and first digit stay as a country
    hint); ``2025554567`` → ``2*****4567``. Runs of fewer than 7 digits are left alone.
    """

    def repl(match: re.Match[str]) -> str:
        value = match.group(0)
        digits = "".join(ch for ch in value if ch.isdigit())
        head = ("+" if value.startswith("+") else "") + digits[0]
        return head + "*" * (len(digits) - 5) + digits[-4:]

    return _NUMBER.sub(repl, text)


def _is_secret(key: str) -> bool:
    return _key_class(key)[0]


@functools.lru_cache(maxsize=1024)
def _key_class(key: str) -> tuple[bool, bool]:
    """(a secret?, may hold a phone number?) for a log key; keys are few, calls many."""
    lowered = key.lower()
    normal = lowered.replace("-", "_")
    secret = normal in SECRET_KEYS or normal.endswith(_SECRET_SUFFIXES)
    return secret, lowered in NUMBER_KEYS or lowered in _TEXT_KEYS


def _scrub(key: str, value: Any, mask_numbers: bool, depth: int) -> Any:
    """Redact one value; recurse into mappings and sequences (headers, recipient lists)."""
    secret, numbers = _key_class(key)
    if secret:
        return REDACTED
    if isinstance(value, str):
        return mask_number(value) if mask_numbers and numbers else value
    if isinstance(value, bytes | bytearray | memoryview):
        return f"[{len(value)} bytes]"
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {k: _scrub(str(k), v, mask_numbers, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        # Items inherit the key: ``to=[...]`` is a list of numbers.
        return [_scrub(key, item, mask_numbers, depth + 1) for item in value]
    return value


def redactor(mask_numbers: bool) -> Processor:
    """A structlog processor that removes secrets and bytes and masks phone numbers."""

    def redact(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
        for key in list(event_dict):
            event_dict[key] = _scrub(str(key), event_dict[key], mask_numbers, 0)
        return event_dict

    return redact


def _use_console(fmt: str, stream: TextIO) -> bool:
    if fmt == "console":
        return True
    if fmt == "json":
        return False
    if fmt != "auto":
        raise ValueError(f"unknown log format {fmt!r} (auto, json or console)")
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    mask_numbers: bool = True,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and stdlib logging to one stream; safe to call more than once.

    Args:
        level: ``debug``, ``info``, ``warning``, ``error`` or ``critical``.
        fmt: ``json`` (one object per line), ``console`` (human-readable), or ``auto``:
            console when ``stream`` is a TTY, JSON otherwise.
        mask_numbers: mask phone numbers down to their last four digits.
        stream: where lines go; ``sys.stderr`` (as it is at call time) by default.

    Raises:
        ValueError: unknown ``level`` or ``fmt``.
    """
    out = stream if stream is not None else sys.stderr
    numeric_level = logging.getLevelNamesMapping().get(level.upper())
    if numeric_level is None:
        raise ValueError(f"unknown log level {level!r}")
    console = _use_console(fmt, out)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redactor(mask_numbers),
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=_use_console("auto", out))
        if console
        else structlog.processors.JSONRenderer(default=str)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a second configure_logging() (tests, demo) must take effect for
        # loggers created at import time.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    # Nothing we render uses the caller's file/line, thread or process: skip collecting
    # them for every record (the logging HOWTO's "optimization" switches).
    logging._srcfile = None  # noqa: SLF001
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(numeric_level)
