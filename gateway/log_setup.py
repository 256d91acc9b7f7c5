"""Logging: structlog JSON lines (or a console renderer on a TTY) for our logs and stdlib's.

One processor chain renders both structlog events and stdlib records (aiohttp.access,
asyncio), so every line has the same shape. A redaction processor runs before rendering:
secrets and media bytes never reach the output, and phone numbers are masked down to
their last four digits unless masking is switched off.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Final, TextIO

import structlog
from structlog.typing import EventDict, Processor

_SECRET_KEYS: Final = frozenset(
    {"password", "secret", "key", "api_key", "authorization", "token", "data", "body", "signature"}
)
_NUMBER_KEYS: Final = frozenset({"to", "from", "recipient", "sender", "number", "msisdn"})
_NUMBER: Final = re.compile(r"\+?\d[\d ]{5,}\d")


def mask_number(text: str) -> str:
    """``+12025550101`` → ``+1*******0101``: keep the country hint and the last 4 digits."""

    def repl(match: re.Match[str]) -> str:
        value = match.group(0)
        digits = [ch for ch in value if ch.isdigit()]
        if len(digits) < 7:
            return value
        keep_head = 2 if value.startswith("+") else 1
        head = value[:keep_head]
        return head + "*" * (len(value) - keep_head - 4) + value[-4:]

    return _NUMBER.sub(repl, text)


def redactor(mask_numbers: bool) -> Processor:
    def redact(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
        for key in list(event_dict):
            lowered = key.lower()
            if lowered in _SECRET_KEYS:
                event_dict[key] = "[redacted]"
            elif mask_numbers and isinstance(event_dict[key], str):
                if lowered in _NUMBER_KEYS or lowered == "event":
                    event_dict[key] = mask_number(event_dict[key])
        return event_dict

    return redact


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    mask_numbers: bool = True,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and stdlib logging; safe to call more than once."""
    out = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and out.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redactor(mask_numbers),
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_mm7gw", False):
            root.removeHandler(old)
    handler._mm7gw = True  # type: ignore[attr-defined]  # noqa: SLF001 - our marker
    root.addHandler(handler)
    root.setLevel(level.upper())

