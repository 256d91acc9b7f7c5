"""What a client asks the outbound side to do, validated: submit or replace a message.

The REST API (``gateway.api.schemas``) builds these from JSON or form data; anything
else that sends (opt-out confirmations, the console, bulk sends) builds them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class MediaInput:
    """One media item as the client gave it: inline bytes, a URL, or a form file part."""

    index: int
    content_type: str | None = None
    data: bytes | None = None
    url: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitRequest:
    to: tuple[str, ...]
    sender: str | None = None
    subject: str | None = None
    text: str | None = None
    media: tuple[MediaInput, ...] = ()
    route: str | None = None
    delivery_report: bool = True
    read_report: bool = False
    priority: str | None = None
    send_at: float | None = None
    expires_at: float | None = None
    callback_url: str | None = None
    client_ref: str | None = None
    #: A ``[[pool]]`` name instead of ``sender``: the gateway picks each recipient's sender.
    pool: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReplaceRequest:
    """New content for a message (``PUT /v1/messages/{id}``)."""

    subject: str | None
    text: str | None
    media: tuple[MediaInput, ...]
