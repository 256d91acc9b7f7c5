"""The recipients of a bulk send, validated one by one into a compact buffer.

A campaign may name 100,000 numbers; a tuple of them would be 100,000 string objects
(several MB of headers alone) for the whole life of the request. Normalised numbers go
into one ``bytearray`` (newline-separated) and their input lines into one ``array``, so
memory holds two objects plus the chunk being committed.

A number given twice is sent once: the later lines are listed as ``duplicate`` (with the
line that has it first). Seen numbers are their E.164 digits (at most 15, so under 2**50)
in :class:`DigitSet`, one ``array`` used as an open-addressing hash table: 8 bytes a slot,
at most half full, so 2 MiB for 100,000 numbers and no object per number (a ``set`` of
ints would take 7 MiB: a 4 MiB table plus a 32-byte int each). The first line of a
duplicate is found again only for those listed (a search of the buffer, no index kept).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field

from gateway.errors import ValidationError
from gateway.numbers import normalise_number

#: Invalid lines listed in an answer; past this only ``invalid_count`` grows.
MAX_INVALID_LISTED = 1000
#: Longest input value echoed back in an invalid-line entry.
MAX_ECHOED_CHARS = 64


#: Fibonacci hashing: spreads consecutive numbers (a typical list) over the table.
_MIX = 0x9E3779B97F4A7C15
_WORD = (1 << 64) - 1


class DigitSet:
    """A set of positive ints below 2**64 in one ``array`` (linear probing, 0 = empty)."""

    __slots__ = ("_bits", "_count", "_slots")

    def __init__(self) -> None:
        self._bits = 10
        self._slots = array("Q", bytes(8 << self._bits))
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _home(self, value: int) -> int:
        return ((value * _MIX) & _WORD) >> (64 - self._bits)

    def add(self, value: int) -> bool:
        """Add ``value``; False when it was already in."""
        slots, mask = self._slots, (1 << self._bits) - 1
        index = self._home(value)
        while slots[index]:
            if slots[index] == value:
                return False
            index = (index + 1) & mask
        slots[index] = value
        self._count += 1
        if self._count * 2 > mask:
            self._grow()
        return True

    def _grow(self) -> None:
        old = self._slots
        self._bits += 1
        self._slots = array("Q", bytes(8 << self._bits))
        self._count = 0
        for value in old:
            if value:
                self.add(value)


@dataclass(frozen=True, slots=True)
class InvalidEntry:
    line: int
    value: str
    error: str


def _shown(value: object) -> str:
    """An input value as an answer can show it: a string, short, lone surrogates escaped."""
    text = value if isinstance(value, str) else repr(value)
    return text[:MAX_ECHOED_CHARS].encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(slots=True)
class RecipientList:
    """Valid recipients (E.164) in input order, with their input line numbers, and the
    invalid lines (the first ``MAX_INVALID_LISTED`` of them, and how many in all)."""

    max_recipients: int
    _numbers: bytearray = field(default_factory=bytearray)
    _lines: array[int] = field(default_factory=lambda: array("I"))
    invalid: list[InvalidEntry] = field(default_factory=list)
    invalid_count: int = 0
    _seen: DigitSet = field(default_factory=DigitSet)

    def __len__(self) -> int:
        return len(self._lines)

    def add(self, line: int, raw: object) -> None:
        """Validate one input value; a bad number is listed, not raised.

        Raises:
            ValidationError: ``too_many_recipients`` past ``max_recipients`` valid numbers.
        """
        try:
            # One field name for every line: the normaliser's memo is keyed on it too.
            number = normalise_number(raw, "to")
        except ValidationError as exc:
            self._refuse(line, raw, exc.message)
            return
        if not self._seen.add(int(number[1:])):
            self.invalid_count += 1
            if len(self.invalid) < MAX_INVALID_LISTED:
                first = self._line_of(number)
                self.invalid.append(
                    InvalidEntry(line, _shown(raw), f"duplicate: the same number as line {first}")
                )
            return
        if len(self._lines) >= self.max_recipients:
            raise ValidationError(
                f"at most {self.max_recipients} recipients per batch",
                field="to",
                code="too_many_recipients",
            )
        self._numbers += number.encode("ascii") + b"\n"
        self._lines.append(line)

    def _refuse(self, line: int, raw: object, error: str) -> None:
        self.invalid_count += 1
        if len(self.invalid) < MAX_INVALID_LISTED:
            self.invalid.append(InvalidEntry(line, _shown(raw), error))

    def _line_of(self, number: str) -> int:
        """Input line of a number already in the buffer."""
        entry = number.encode("ascii") + b"\n"
        if self._numbers.startswith(entry):
            return self._lines[0]
        at = self._numbers.find(b"\n" + entry) + 1
        return self._lines[self._numbers.count(b"\n", 0, at)]

    def first(self) -> str:
        """The first valid recipient."""
        return self._numbers[: self._numbers.index(b"\n")].decode("ascii")

    def chunks(self, size: int) -> Iterator[tuple[tuple[int, ...], tuple[str, ...]]]:
        """``(lines, numbers)`` of consecutive recipients, ``size`` at a time."""
        start = 0
        for offset in range(0, len(self._lines), size):
            lines = tuple(self._lines[offset : offset + size])
            numbers = []
            for _ in lines:
                end = self._numbers.index(b"\n", start)
                numbers.append(self._numbers[start:end].decode("ascii"))
                start = end + 1
            yield lines, tuple(numbers)
