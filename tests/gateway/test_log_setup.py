"""``configure_logging``: rendered JSON/console lines, stdlib routing, context, redaction."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.ops.log_setup import REDACTED, configure_logging, mask_number, redactor


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def setup(**kwargs: Any) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(stream=stream, **{"fmt": "json", **kwargs})
    return stream


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+12025554567", "+1******4567"),
        ("2025554567", "2*****4567"),
        ("to +44 20 7946 0958 now", "to +4*******0958 now"),
        ("1234567", "1**4567"),
        ("id 123456 stays", "id 123456 stays"),
        ("on 2026-11-23 at 10:00", "on 2026-11-23 at 10:00"),
        ("msg_12345678", "msg_12345678"),
    ],
)
def test_mask_number(text: str, masked: str) -> None:
    assert mask_number(text) == masked


def test_json_line_has_timestamp_level_logger_and_context() -> None:
    stream = setup()
    log = structlog.get_logger("gateway.test")
    with structlog.contextvars.bound_contextvars(message_id="msg-1", mmsc="mock"):
        log.info("submitted", attempt=2, mm7_message_id="abc")
    log.info("after")
    first, second = lines(stream)
    assert first["event"] == "submitted"
    assert first["level"] == "info"
    assert first["logger"] == "gateway.test"
    assert first["message_id"] == "msg-1"
    assert first["mmsc"] == "mock"
    assert first["attempt"] == 2
    assert first["timestamp"].endswith("Z")
    assert first["timestamp"][:4].isdigit() and "T" in first["timestamp"]
    # the context does not leak past the with-block
    assert "message_id" not in second


def test_stdlib_records_share_the_chain() -> None:
    stream = setup()
    with structlog.contextvars.bound_contextvars(request_id="r-9"):
        logging.getLogger("aiohttp.access").info(
            '%s "%s" %d from %s', "127.0.0.1", "GET /v1/messages", 202, "+12025554567"
        )
    (line,) = lines(stream)
    assert line["logger"] == "aiohttp.access"
    assert line["level"] == "info"
    assert line["event"] == '127.0.0.1 "GET /v1/messages" 202 from +1******4567'
    assert line["request_id"] == "r-9"


def test_secrets_bytes_and_numbers_are_redacted() -> None:
    stream = setup()
    log = structlog.get_logger("t")
    log.warning(
        "sending to +12025554567",
        to=["+12025554567", "+447946095811"],
        sender="+15551234567",
        password="hunter2",
        inbound_password="p2",
        api_key="k-1",
        Authorization="Bearer xyz",
        data=b"\xff\xd8",
        attachment=b"0123456789",
        headers={"Authorization": "Basic abc", "Content-Type": "text/xml"},
        error="peer said: bad number 12025554567",
        short_code="12345",
    )
    (line,) = lines(stream)
    raw = stream.getvalue()
    for secret in ("hunter2", 'p2"', "k-1", "xyz", "Basic abc", "5554567", "95811"):
        assert secret not in raw
    assert line["event"] == "sending to +1******4567"
    assert line["to"] == ["+1******4567", "+4*******5811"]
    assert line["sender"] == "+1******4567"
    for key in ("password", "inbound_password", "api_key", "Authorization", "data"):
        assert line[key] == REDACTED
    assert line["attachment"] == "[10 bytes]"
    assert line["headers"] == {"Authorization": REDACTED, "Content-Type": "text/xml"}
    assert line["error"] == "peer said: bad number 1******4567"
    assert line["short_code"] == "12345"


def test_mask_numbers_off_keeps_numbers_but_not_secrets() -> None:
    stream = setup(mask_numbers=False)
    structlog.get_logger("t").info("to +12025554567", to="+12025554567", password="x")
    (line,) = lines(stream)
    assert line["event"] == "to +12025554567"
    assert line["to"] == "+12025554567"
    assert line["password"] == REDACTED


def test_level_filters_both_structlog_and_stdlib() -> None:
    stream = setup(level="warning")
    structlog.get_logger("t").info("quiet")
    logging.getLogger("aiohttp.access").info("quiet too")
    structlog.get_logger("t").warning("loud")
    assert [line["event"] for line in lines(stream)] == ["loud"]


def test_exceptions_are_rendered_and_masked() -> None:
    def fail() -> None:
        raise RuntimeError("cannot reach +12025554567")

    stream = setup()
    try:
        fail()
    except RuntimeError:
        structlog.get_logger("t").exception("failed")
    (line,) = lines(stream)
    assert "RuntimeError: cannot reach +1******4567" in line["exception"]
    assert "5554567" not in stream.getvalue()


def test_idempotent_reconfiguration_moves_output() -> None:
    first = setup()
    second = setup()
    structlog.get_logger("t").info("once")
    logging.getLogger("other").warning("stdlib once")
    assert first.getvalue() == ""
    assert [line["event"] for line in lines(second)] == ["once", "stdlib once"]
    marked = [h for h in logging.getLogger().handlers if getattr(h, "_mm7gw_handler", False)]
    assert len(marked) == 1


def test_console_format_is_not_json() -> None:
    stream = setup(fmt="console")
    structlog.get_logger("t").info("hello", to="+12025554567")
    text = stream.getvalue()
    assert "hello" in text
    assert "+1******4567" in text
    assert not text.lstrip().startswith("{")
    assert "\x1b[" not in text  # no colours when the stream is not a TTY


def test_auto_format_is_json_when_not_a_tty() -> None:
    stream = setup(fmt="auto")
    structlog.get_logger("t").info("auto")
    assert lines(stream)[0]["event"] == "auto"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_format_is_console_on_a_tty() -> None:
    stream = _Tty()
    configure_logging(stream=stream, fmt="auto")
    structlog.get_logger("t").info("tty")
    assert not stream.getvalue().lstrip().startswith("{")
    assert "tty" in stream.getvalue()


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"level": "loud"}, "level"), ({"fmt": "xml"}, "format")]
)
def test_bad_arguments(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        configure_logging(stream=io.StringIO(), **kwargs)


def test_redactor_with_capture_logs() -> None:
    # The processor works on its own too (structlog's capture_logs in other tests).
    redact = redactor(mask_numbers=True)
    event = redact(None, "info", {"event": "x 2025554567", "msisdn": "2025554567", "secret": "s"})
    assert event == {"event": "x 2*****4567", "msisdn": "2*****4567", "secret": REDACTED}


def test_the_documented_masking_examples_are_what_masking_does():
    # The example a reader of config/gateway.toml and the README sees is the real output.
    root = Path(__file__).resolve().parents[2]
    for path in (root / "config" / "gateway.toml", root / "README.md"):
        examples = re.findall(r"(\+?\d{7,}) -> (\+?\d\**\d{4})", path.read_text())
        assert examples, f"{path.name} lost its masking example"
        for number, masked in examples:
            assert mask_number(number) == masked, (path.name, number, masked)
