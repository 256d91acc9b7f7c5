# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""The gateway's exception hierarchy: one root, one branch per layer.

``GatewayError`` is the root every gateway layer catches. Each error carries the answer the
I/O layer needs (h11's ``error_status_hint`` idea): ``ConfigError`` names the key path(s) of
the bad configuration, ``ApiError`` carries the REST error ``code``, ``http_status``, the
request ``field`` at fault and, for back-pressure, ``retry_after`` seconds. The REST layer
raises the specific leaf and renders any ``ApiError`` with :meth:`ApiError.to_json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Sequence


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a configuration: where (``mmsc[0].tps``) and what is wrong."""

    key_path: str
    message: str

    def __str__(self) -> str:
        return f"{self.key_path}: {self.message}" if self.key_path else self.message


class ConfigError(GatewayError):
    """The configuration is unusable; ``problems`` lists every problem found.

    Args:
        message: one line summarising the failure (``str(exc)``).
        key_path: the key at fault when there is a single problem (``""`` for the file).
        problems: every problem, each with its key path; defaults to one problem built
            from ``key_path`` and ``message``.
        source: the file the configuration came from, when it came from a file.
    """

    def __init__(
        self,
        message: str,
        key_path: str | None = None,
        *,
        problems: Sequence[ConfigProblem] = (),
        source: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.problems: tuple[ConfigProblem, ...] = tuple(problems) or (
            ConfigProblem(key_path or "", message),
        )
        self.key_path = key_path if key_path is not None else self.problems[0].key_path
        self.source = source


class ApiError(GatewayError):
    """An error answered to a REST client as ``{"error": {"code", "message", "field"}}``.

    Args:
        code: machine-readable error code (``validation_error``, ``queue_full``, ...).
        message: human-readable explanation; never contains internals or secrets.
        http_status: the HTTP status to answer with.
        field: the request field at fault, if any (``to``, ``media[0].url``, ...).
        retry_after: seconds the client should wait (sent as ``Retry-After``).
    """

    def __init__(
        self,
        code: str,
        message: str,
        http_status: int,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.field = field
        self.retry_after = retry_after

    def to_json(self) -> dict[str, Any]:
        """The error envelope of the REST API (DESIGN.md §3)."""
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"http_status={self.http_status}, field={self.field!r})"
        )


class _LeafApiError(ApiError):
    """An ``ApiError`` whose status and default code come from the class.

    Leaves are raised as ``ValidationError("to is required", field="to")``; ``code`` may be
    overridden to be more precise (``code="invalid_number"``) without a new class.
    """

    default_code: ClassVar[str]
    default_status: ClassVar[int]

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            code or self.default_code,
            message,
            self.default_status,
            field=field,
            retry_after=retry_after,
        )


class ValidationError(_LeafApiError):
    """The request is malformed or violates a rule (400)."""

    default_code = "validation_error"
    default_status = 400


class AuthError(_LeafApiError):
    """No credentials, or credentials we do not know (401)."""

    default_code = "unauthorized"
    default_status = 401


class ForbiddenError(_LeafApiError):
    """Known credentials that may not do this (403)."""

    default_code = "forbidden"
    default_status = 403


class NotFoundError(_LeafApiError):
    """The resource does not exist, or is not visible to this API key (404)."""

    default_code = "not_found"
    default_status = 404


class IdempotencyConflict(_LeafApiError):  # noqa: N818 - name fixed by the brief, read as a condition
    """An ``Idempotency-Key`` reused with a different request (409)."""

    default_code = "idempotency_conflict"
    default_status = 409


class StateConflict(_LeafApiError):  # noqa: N818 - read as a condition, like its siblings
    """The message is not in a state that allows the operation, or the MMSC refused it
    (409: ``message_in_flight``, ``message_final``, ``cancel_refused``, ``replace_refused``)."""

    default_code = "state_conflict"
    default_status = 409


class MmscUnavailable(_LeafApiError):  # noqa: N818 - read as a condition, like its siblings
    """The MMSC did not answer a request made on the client's behalf (502)."""

    default_code = "mmsc_unavailable"
    default_status = 502


class PayloadTooLarge(_LeafApiError):  # noqa: N818 - name fixed by the brief, read as a condition
    """The body, a media part or the resulting MM7 message is over a size limit (413)."""

    default_code = "payload_too_large"
    default_status = 413


class UnsupportedMedia(_LeafApiError):  # noqa: N818 - name fixed by the brief, read as a condition
    """Media the gateway cannot carry or adapt for the route (422)."""

    default_code = "unsupported_media"
    default_status = 422


class RateLimited(_LeafApiError):  # noqa: N818 - read as a condition, like its siblings
    """The client made too many requests of a kind (429), e.g. unknown short links."""

    default_code = "rate_limited"
    default_status = 429


class Backpressure(_LeafApiError):  # noqa: N818 - name fixed by the brief, read as a condition
    """The queue is over its bound; the client should retry after ``retry_after`` (503)."""

    default_code = "queue_full"
    default_status = 503

    def __init__(
        self,
        message: str = "the gateway is busy, retry later",
        *,
        field: str | None = None,
        code: str | None = None,
        retry_after: float | None = 1.0,
    ) -> None:
        super().__init__(message, field=field, code=code, retry_after=retry_after)


class StoreError(GatewayError):
    """The durable store failed (cannot open, commit failed, schema too new)."""


class MediaError(GatewayError):
    """Media could not be stored, read or processed (not a client's fault)."""


class TransportError(GatewayError):
    """An MMSC or webhook peer could not be reached: connect, TLS or timeout failure."""
