"""Choose the MMSC route for a recipient: explicit route, longest prefix, or the default."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import ValidationError


@dataclass(frozen=True, slots=True)
class RouteRule:
    name: str
    prefixes: tuple[str, ...]
    default: bool = False


class Router:
    def __init__(self, rules: Sequence[RouteRule]) -> None:
        self.rules = tuple(rules)
        self.names = frozenset(rule.name for rule in self.rules)
        self._prefixes = sorted(
            ((p.lstrip("+"), rule.name) for rule in self.rules for p in rule.prefixes),
            key=lambda item: -len(item[0]),
        )
        defaults = [rule.name for rule in self.rules if rule.default]
        # With a single route and no prefixes, everything goes there.
        self.default = (
            defaults[0] if defaults else (self.rules[0].name if len(self.rules) == 1 else None)
        )

    def route_for(self, number: str, explicit: str | None = None) -> str:
        if explicit is not None:
            if explicit not in self.names:
                raise ValidationError(
                    f"unknown route {explicit!r}", field="route", code="unknown_route"
                )
            return explicit
        digits = number.lstrip("+")
        for prefix, name in self._prefixes:
            if digits.startswith(prefix):
                return name
        if self.default is None:
            raise ValidationError(f"no route matches {number[:3]}...", field="to", code="no_route")
        return self.default
