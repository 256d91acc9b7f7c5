# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""``mm7-gateway inspect FILE``: decode a captured MM7 body or raw HTTP message to JSON.

Owns the JSON view of a decoded message (type, version, transaction id, every field,
leniencies, attachments with size and sha256). Input may be a bare SOAP body, a bare
MIME body, or a whole HTTP request/response with its headers; ``--content-type``
overrides whatever the capture says.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import hashlib
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from protocol import Attachment, Extension, Message, ProtocolError, decode
from protocol.capture import split_http_message
from protocol.versions import NAMESPACE_PREFIX

#: Message attributes shown at the top level rather than under ``fields``.
_ENVELOPE_ATTRS = frozenset(
    {"transaction_id", "version", "attachments", "extensions", "leniencies"}
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", type=Path, help="captured body or HTTP message")
    parser.add_argument(
        "--content-type",
        metavar="CT",
        help="HTTP Content-Type of the body (default: from the capture's headers, if any)",
    )


def run(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        raw = path.read_bytes()
    except OSError as exc:
        sys.stderr.write(f"error: cannot read {path}: {exc.strerror or exc}\n")
        return 2
    try:
        start_line, headers, body = split_http_message(raw)
        content_type = args.content_type or headers.get("content-type")
        message = decode(body, content_type)
    except ProtocolError as exc:
        sys.stderr.write(f"error: {type(exc).__name__}: {_one_line(str(exc))}\n")
        return 1
    report = describe(message)
    if start_line is not None:
        report["http"] = {"start_line": start_line, "headers": headers}
    sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


def describe(message: Message) -> dict[str, Any]:
    """The JSON-ready view of a decoded message."""
    fields = {
        field.name: to_json(getattr(message, field.name))
        for field in dataclasses.fields(message)
        if field.name not in _ENVELOPE_ATTRS
    }
    namespace = NAMESPACE_PREFIX + message.version if message.version else None
    return {
        "type": type(message).__name__,
        "version": message.version,
        "namespace": namespace,
        "transaction_id": message.transaction_id,
        "fields": fields,
        "leniencies": list(message.leniencies),
        "attachments": [_attachment(a) for a in message.attachments],
        "extensions": [_extension(e) for e in message.extensions],
    }


def to_json(value: Any) -> Any:
    """Dataclasses to dicts, datetimes to ISO 8601, enums to their values, tuples to lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_json(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _attachment(attachment: Attachment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "content_type": attachment.content_type,
        "content_id": attachment.content_id,
        "content_location": attachment.content_location,
        "size": attachment.size,
        "sha256": None if attachment.parts else hashlib.sha256(attachment.data).hexdigest(),
    }
    if attachment.parts:
        out["parts"] = [_attachment(part) for part in attachment.parts]
    return out


def _extension(extension: Extension) -> dict[str, Any]:
    return {"name": extension.name, "namespace": extension.namespace, "text": extension.text}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """Run ``inspect`` on its own (``python -m gateway.cli.inspect``)."""
    parser = argparse.ArgumentParser(
        prog="mm7-gateway inspect", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
