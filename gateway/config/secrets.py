"""Secret config values as the plain text the components use."""

from __future__ import annotations

from typing import Any


def secret_text(value: Any) -> str | None:
    """The text of a ``SecretStr`` (a plain value as it is; ``None`` stays ``None``)."""
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if getter is not None else str(value)
