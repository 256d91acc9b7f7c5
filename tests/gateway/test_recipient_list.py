"""The compact recipient buffer of bulk sends: duplicates found with a set of digits in
one array, their first line found again, limits counted on distinct numbers."""

from __future__ import annotations

import random

import pytest

from gateway.errors import ValidationError
from gateway.outbound.recipient_list import MAX_INVALID_LISTED, DigitSet, RecipientList


def test_digit_set_agrees_with_a_set_through_growth_and_collisions():
    rng = random.Random(7)
    # Random 15-digit values, consecutive runs (a typical list) and repeats of both.
    values = [rng.randrange(1, 10**15) for _ in range(5000)]
    values += list(range(447_700_900_000, 447_700_905_000))
    values += rng.sample(values, 3000)
    digits, reference = DigitSet(), set()
    for value in values:
        assert digits.add(value) == (value not in reference)
        reference.add(value)
    assert len(digits) == len(reference) == 10_000
    # Half full at most: 16,384 slots would be too few for 10,000 values.
    assert len(digits._slots) == 32_768


def test_duplicates_name_the_first_line_and_are_not_recipients():
    recipients = RecipientList(max_recipients=3)
    for line, raw in enumerate(["+12125550100", "+12125550101", " +12125550100", "+12125550101",
                                "+12125550102", "+12125550100"], start=1):  # fmt: skip
        recipients.add(line, raw)
    assert len(recipients) == 3
    assert [(e.line, e.error) for e in recipients.invalid] == [
        (3, "duplicate: the same number as line 1"),
        (4, "duplicate: the same number as line 2"),
        (6, "duplicate: the same number as line 1"),
    ]
    assert [n for _, chunk in recipients.chunks(10) for n in chunk] == [
        "+12125550100", "+12125550101", "+12125550102",
    ]  # fmt: skip
    # Duplicates do not use up the limit; a fourth distinct number does.
    with pytest.raises(ValidationError) as refused:
        recipients.add(7, "+12125550103")
    assert refused.value.code == "too_many_recipients"


def test_duplicates_past_the_listed_ones_are_counted():
    recipients = RecipientList(max_recipients=10)
    recipients.add(1, "+12125550100")
    for line in range(2, MAX_INVALID_LISTED + 12):
        recipients.add(line, "+12125550100")
    assert len(recipients.invalid) == MAX_INVALID_LISTED
    assert recipients.invalid_count == MAX_INVALID_LISTED + 10
