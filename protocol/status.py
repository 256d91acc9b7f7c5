# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""MM7 request status codes (TS 23.140 §8.7.4, table 21) and their retry classes.

Theory of operation: this is the one table that decides whether a status means success,
a permanent failure, a transient failure worth retrying, or a "slow down" signal. The
gateway may override the class of any code per MMSC (peers reuse codes differently);
the defaults here follow the spec's meaning. Codes we do not know are classified by
their thousands digit, as the spec's ranges intend (vendors add e.g. 2150 "MIME error").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final


class StatusClass(enum.Enum):
    """The spec's four ranges of status codes."""

    SUCCESS = "success"  # 1xxx
    CLIENT_ERROR = "client_error"  # 2xxx
    SERVER_ERROR = "server_error"  # 3xxx
    SERVICE_ERROR = "service_error"  # 4xxx
    UNKNOWN = "unknown"


class RetryClass(enum.Enum):
    """What a sender should do after receiving a status code."""

    OK = "ok"
    FAIL = "fail"  # permanent: retrying the same request cannot succeed
    RETRY = "retry"  # transient: retry with back-off
    RETRY_SLOW_DOWN = "retry_slow_down"  # peer overloaded: retry and lower the send rate


@dataclass(frozen=True, slots=True)
class StatusInfo:
    code: int
    name: str
    status_class: StatusClass
    retry_class: RetryClass
    known: bool = True


_S, _C, _V, _E = (
    StatusClass.SUCCESS,
    StatusClass.CLIENT_ERROR,
    StatusClass.SERVER_ERROR,
    StatusClass.SERVICE_ERROR,
)
_OK, _FAIL, _RETRY, _SLOW = (
    RetryClass.OK,
    RetryClass.FAIL,
    RetryClass.RETRY,
    RetryClass.RETRY_SLOW_DOWN,
)

#: code -> (name as in TS 23.140, class, default retry class)
STATUS_TABLE: Final[dict[int, tuple[str, StatusClass, RetryClass]]] = {
    1000: ("Success", _S, _OK),
    1100: ("Partial success", _S, _OK),
    2000: ("Client error", _C, _FAIL),
    2001: ("Operation restricted", _C, _FAIL),
    2002: ("Address Error", _C, _FAIL),
    2003: ("Address Not Found", _C, _FAIL),
    2004: ("Multimedia content refused", _C, _FAIL),
    2005: ("Message ID Not found", _C, _FAIL),
    2006: ("LinkedID not found", _C, _FAIL),
    2007: ("Message format corrupt", _C, _FAIL),
    2008: ("Application ID not found", _C, _FAIL),
    2009: ("Reply Application ID not found", _C, _FAIL),
    3000: ("Server Error", _V, _RETRY),
    3001: ("Not Possible", _V, _RETRY),
    3002: ("Message rejected", _V, _RETRY),
    # Resending the same multi-recipient request cannot help; the sender must split it.
    3003: ("Multiple addresses not supported", _V, _FAIL),
    3004: ("Application Addressing not supported", _V, _FAIL),
    4000: ("General service error", _E, _RETRY),
    4001: ("Improper identification", _E, _FAIL),
    4002: ("Unsupported version", _E, _FAIL),
    4003: ("Unsupported operation", _E, _FAIL),
    4004: ("Validation error", _E, _FAIL),
    4005: ("Service error", _E, _RETRY),
    4006: ("Service unavailable", _E, _SLOW),
    4007: ("Service denied", _E, _FAIL),
    4008: ("Application denied", _E, _FAIL),
}

_BY_THOUSANDS: Final[dict[int, tuple[StatusClass, RetryClass]]] = {
    1: (_S, _OK),
    2: (_C, _FAIL),
    3: (_V, _RETRY),
    4: (_E, _RETRY),
}

SUCCESS: Final = 1000
PARTIAL_SUCCESS: Final = 1100


def status_info(code: int) -> StatusInfo:
    """Describe a status code; unknown codes are classified by their thousands digit."""
    entry = STATUS_TABLE.get(code)
    if entry is not None:
        name, status_class, retry_class = entry
        return StatusInfo(code, name, status_class, retry_class)
    status_class, retry_class = _BY_THOUSANDS.get(
        code // 1000, (StatusClass.UNKNOWN, RetryClass.FAIL)
    )
    return StatusInfo(code, f"Unknown status {code}", status_class, retry_class, known=False)


def status_name(code: int) -> str:
    return status_info(code).name


def is_success(code: int) -> bool:
    return status_info(code).status_class is StatusClass.SUCCESS


def retry_class(code: int) -> RetryClass:
    return status_info(code).retry_class
