"""Sender pools on the outbound side: which sender a recipient gets, and when it may be sent.

Sans-IO (the clock's value and the stored sticky senders are handed in):
:class:`SenderPool` picks senders (sticky, else the least busy capable one by virtual
scheduling: each sender is busy until ``next_free``, and a message costs it ``1/tps``),
and :func:`earliest_allowed` moves a send out of the recipient's quiet hours, read in the
recipient's local time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_timezones

from gateway.errors import ValidationError
from gateway.store.records import NewMessage, PoolRules


@dataclass(frozen=True, slots=True)
class PoolSenderSpec:
    address: str
    mms: bool
    #: Its own rate (None: unlimited here; the route's rate still holds).
    tps: float | None


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """What the outbound side needs of a ``[[pool]]``."""

    name: str
    consent: str
    senders: tuple[PoolSenderSpec, ...]
    #: Quiet window in minutes after local midnight ``(start, end)``; may wrap midnight.
    quiet: tuple[int, int] | None = None
    max_per_day: int | None = None

    @property
    def has_mms(self) -> bool:
        return any(s.mms for s in self.senders)


class SenderPool:
    """Sender choice for one pool (in memory: a restart starts every sender idle)."""

    def __init__(self, spec: PoolSpec) -> None:
        self.spec = spec
        self._next_free = {s.address: 0.0 for s in spec.senders}

    def capable(self, mms: bool) -> list[PoolSenderSpec]:
        return [s for s in self.spec.senders if s.mms or not mms]

    def choose(self, *, mms: bool, sticky: str | None, now: float) -> str:
        """The sender for one recipient: ``sticky`` if it is still in the pool and can carry
        the content, else the capable sender that would start it soonest; either way the
        message is booked on it.

        Raises:
            LookupError: no sender of the pool can carry this content.
        """
        candidates = self.capable(mms)
        if not candidates:
            raise LookupError(f"pool {self.spec.name} has no sender for this content")
        chosen = next((s for s in candidates if s.address == sticky), None)
        if chosen is None:
            chosen = min(candidates, key=lambda s: max(now, self._next_free[s.address]))
        start = max(now, self._next_free[chosen.address])
        self._next_free[chosen.address] = start + (1.0 / chosen.tps if chosen.tps else 0.0)
        return chosen.address


@functools.lru_cache(maxsize=4096)
def zones_for(number: str) -> tuple[ZoneInfo, ...]:
    """Time zones of an E.164 number (several for a country or area spanning them); UTC
    when phonenumbers knows none."""
    try:
        names = number_timezones.time_zones_for_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        names = ()
    zones = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return tuple(zones) or (ZoneInfo("UTC"),)


def _quiet_in(when: float, zone: ZoneInfo, quiet: tuple[int, int]) -> bool:
    local = datetime.fromtimestamp(when, UTC).astimezone(zone)
    minute = local.hour * 60 + local.minute
    start, end = quiet
    return start <= minute < end if start < end else (minute >= start or minute < end)


def _window_ends(now: float, zone: ZoneInfo, quiet: tuple[int, int]) -> list[float]:
    """The window's end on the local days around ``now`` (UTC times at or after ``now``)."""
    today = datetime.fromtimestamp(now, UTC).astimezone(zone).date()
    ends = []
    for offset in range(-1, 3):
        day = today + timedelta(days=offset)
        end = datetime(day.year, day.month, day.day, quiet[1] // 60, quiet[1] % 60, tzinfo=zone)
        if end.timestamp() >= now:
            ends.append(end.timestamp())
    return ends


def earliest_allowed(number: str, quiet: tuple[int, int] | None, now: float) -> float:
    """The first time at or after ``now`` outside the quiet window in every zone of the
    number: a number with several zones gets the strictest reading (it waits until the
    window has ended everywhere). Zones whose windows together cover the whole day leave
    no such time: the latest end of a window then."""
    if quiet is None:
        return now
    zones = zones_for(number)
    candidates = sorted({now, *(t for z in zones for t in _window_ends(now, z, quiet))})
    for when in candidates:
        if not any(_quiet_in(when, zone, quiet) for zone in zones):
            return when
    return max(min(_window_ends(now, z, quiet)) for z in zones)


def assign_senders(
    new: NewMessage,
    pool: SenderPool,
    sticky: dict[str, str],
    now: float,
    *,
    client_expiry: bool,
) -> NewMessage:
    """``new`` with each recipient's sender (sticky, else least busy capable) and earliest
    send time (out of its quiet hours), and the pool's rules for the store to check; the
    message's ``send_at`` is the latest recipient's.

    Raises:
        ValidationError: a client's ``expires_at`` ends before the quiet hours do.
    """
    spec = pool.spec
    senders = tuple(
        pool.choose(mms=bool(new.parts), sticky=sticky.get(number), now=now)
        for number in new.recipients
    )
    due = tuple(earliest_allowed(n, spec.quiet, new.send_at) for n in new.recipients)
    send_at = max(due)
    # The default validity runs from when the message may go out.
    expires_at = new.expires_at if client_expiry else new.expires_at + send_at - new.send_at
    if expires_at <= send_at:
        raise ValidationError(
            "expires_at falls inside the recipients' quiet hours; it must be later",
            field="expires_at",
        )
    return replace(
        new,
        sender=senders[0],
        send_at=send_at,
        expires_at=expires_at,
        pool=spec.name,
        pool_rules=PoolRules(spec.name, spec.consent, spec.max_per_day),
        recipient_senders=senders,
        recipient_due=due,
    )
