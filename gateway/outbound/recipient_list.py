"""The recipients of a bulk send, validated one by one into a compact buffer.

A campaign may name 100,000 numbers; a tuple of them would be 100,000 string objects
(several MB of headers alone) for the whole life of the request. Normalised numbers go
into one ``bytearray`` (newline-separated) and their input lines into one ``array``, so
memory holds two objects plus the chunk being committed.
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

    def __len__(self) -> int:
        return len(self._lines)

    def add(self, line: int, raw: object) -> None:
        """Validate one input value; a bad number is listed, not raised.

        Raises:
            ValidationError: ``too_many_recipients`` past ``max_recipients`` valid numbers.
        """
        try:
            number = normalise_number(raw, f"line {line}")
        except ValidationError as exc:
            self.invalid_count += 1
            if len(self.invalid) < MAX_INVALID_LISTED:
                self.invalid.append(InvalidEntry(line, _shown(raw), exc.message))
            return
        if len(self._lines) >= self.max_recipients:
            raise ValidationError(
                f"at most {self.max_recipients} recipients per batch",
                field="to",
                code="too_many_recipients",
            )
        self._numbers += number.encode("ascii") + b"\n"
        self._lines.append(line)

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
