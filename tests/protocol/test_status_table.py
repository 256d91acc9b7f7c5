"""The status table (protocol/status.py) is consistent with itself and with TS 23.140."""

from __future__ import annotations

import pytest

from protocol import RetryClass, StatusClass, retry_class, status_info
from protocol.status import STATUS_TABLE, is_success, status_name

CLASS_BY_THOUSANDS = {
    1: StatusClass.SUCCESS,
    2: StatusClass.CLIENT_ERROR,
    3: StatusClass.SERVER_ERROR,
    4: StatusClass.SERVICE_ERROR,
}


def test_table_lists_every_code_in_quirks_md() -> None:
    expected = {1000, 1100, *range(2000, 2010), *range(3000, 3005), *range(4000, 4009)}
    assert set(STATUS_TABLE) == expected


@pytest.mark.parametrize("code", sorted(STATUS_TABLE))
def test_class_follows_the_thousands_digit(code: int) -> None:
    name, status_class, retry = STATUS_TABLE[code]
    assert name
    assert status_class is CLASS_BY_THOUSANDS[code // 1000]
    assert (retry is RetryClass.OK) == (status_class is StatusClass.SUCCESS)
    info = status_info(code)
    assert (info.code, info.name, info.known) == (code, name, True)
    assert retry_class(code) is retry
    assert status_name(code) == name


def test_names_are_unique() -> None:
    names = [name.lower() for name, _, _ in STATUS_TABLE.values()]
    assert len(names) == len(set(names))


def test_client_errors_are_never_retried() -> None:
    assert all(retry_class(c) is RetryClass.FAIL for c in STATUS_TABLE if c // 1000 == 2)


def test_spec_meaning_of_key_codes() -> None:
    assert retry_class(4006) is RetryClass.RETRY_SLOW_DOWN  # service unavailable
    assert retry_class(3000) is RetryClass.RETRY
    assert retry_class(3001) is RetryClass.RETRY
    assert retry_class(4005) is RetryClass.RETRY
    assert retry_class(4002) is RetryClass.FAIL  # unsupported version: resending cannot help
    assert retry_class(4001) is RetryClass.FAIL
    assert retry_class(3003) is RetryClass.FAIL  # must split the recipients instead
    assert is_success(1000)
    assert is_success(1100)
    assert not is_success(2000)


@pytest.mark.parametrize(
    ("code", "status_class", "retry"),
    [
        (1234, StatusClass.SUCCESS, RetryClass.OK),
        (2150, StatusClass.CLIENT_ERROR, RetryClass.FAIL),  # vendor "MIME error"
        (3999, StatusClass.SERVER_ERROR, RetryClass.RETRY),
        (4100, StatusClass.SERVICE_ERROR, RetryClass.RETRY),
        (0, StatusClass.UNKNOWN, RetryClass.FAIL),
        (999, StatusClass.UNKNOWN, RetryClass.FAIL),
        (5000, StatusClass.UNKNOWN, RetryClass.FAIL),
        (-1000, StatusClass.UNKNOWN, RetryClass.FAIL),
    ],
)
def test_unknown_codes_by_thousands_digit(
    code: int, status_class: StatusClass, retry: RetryClass
) -> None:
    info = status_info(code)
    assert not info.known
    assert (info.status_class, info.retry_class) == (status_class, retry)
    assert str(code) in info.name
