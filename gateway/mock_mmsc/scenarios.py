"""Named fault scenarios of the mock MMSC: one small class per way a carrier misbehaves.

Theory of operation: ``/mm7`` builds a ``RequestView`` of each decoded request and walks
the scenario chain in order; the first scenario that returns an ``Action`` decides the
answer, and ``Happy`` at the end always does. ``Latency`` only delays, so the walk goes
on after it. Every probabilistic scenario draws from the one ``random.Random`` it is
given, exactly once per request it sees, so a seed reproduces the whole sequence.
``build_chain(settings)`` turns the flat settings into the chain; tests may build their
own chains from these classes.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from gateway.mock_mmsc.config import MockSettings


@dataclass(frozen=True, slots=True)
class RequestView:
    """What a scenario may look at: the request's size, type and recipient count."""

    message_type: str
    body_bytes: int
    recipients: int


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer with this MM7 status (1000 = accept)."""

    status_code: int
    status_text: str | None = None


@dataclass(frozen=True, slots=True)
class HttpError:
    """Answer with a bare HTTP error and no SOAP body, like a crashed front end."""

    http_status: int = 500


@dataclass(frozen=True, slots=True)
class Drop:
    """Close the connection without answering."""


@dataclass(frozen=True, slots=True)
class Delay:
    """Wait this long, then let the next scenario decide."""

    seconds: float


Action = Answer | HttpError | Drop | Delay


class Scenario(abc.ABC):
    """One fault (or the absence of one); ``name`` is what ``/admin/stats`` shows."""

    name: ClassVar[str]

    @abc.abstractmethod
    def apply(self, request: RequestView, rng: random.Random) -> Action | None:
        """Return the action for this request, or None to pass it on."""


class Happy(Scenario):
    """Accept everything."""

    name = "happy"

    def apply(self, request: RequestView, rng: random.Random) -> Action:  # noqa: ARG002
        return Answer(1000)


class Latency(Scenario):
    """Slow answers: ``ms`` plus a uniform jitter of +/- ``jitter_ms``."""

    name = "latency"

    def __init__(self, ms: float, jitter_ms: float = 0.0) -> None:
        self.ms = ms
        self.jitter_ms = jitter_ms

    def apply(self, request: RequestView, rng: random.Random) -> Action:  # noqa: ARG002
        jitter = rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return Delay(max(0.0, self.ms + jitter) / 1000)


class _Chance(Scenario):
    """Base of the scenarios that strike with a probability."""

    def __init__(self, probability: float) -> None:
        self.probability = probability

    def hit(self, rng: random.Random) -> bool:
        return rng.random() < self.probability


class DropConnection(_Chance):
    name = "drop"

    def apply(self, request: RequestView, rng: random.Random) -> Action | None:  # noqa: ARG002
        return Drop() if self.hit(rng) else None


class HttpError500(_Chance):
    name = "http_500"

    def apply(self, request: RequestView, rng: random.Random) -> Action | None:  # noqa: ARG002
        return HttpError(500) if self.hit(rng) else None


class Status(Scenario):
    """Answer with one of several status codes, each with its own probability.

    One draw decides between them (the probabilities add up to at most 1), so
    ``Status({4006: 1.0})`` always throttles and ``Status({3000: 0.01})`` fails 1 in 100.
    """

    name = "status"

    def __init__(self, rates: dict[int, float]) -> None:
        self.rates = rates

    def apply(self, request: RequestView, rng: random.Random) -> Action | None:  # noqa: ARG002
        draw = rng.random()
        for code, probability in self.rates.items():
            if draw < probability:
                return Answer(code, "injected fault")
            draw -= probability
        return None


class Throttled(Scenario):
    """More than ``tps`` requests in a second get 4006: a token bucket of ``tps`` tokens."""

    name = "throttled"

    def __init__(self, tps: float, clock: Callable[[], float]) -> None:
        self.tps = tps
        self.clock = clock
        self.tokens = max(1.0, tps)
        self.updated = clock()

    def apply(self, request: RequestView, rng: random.Random) -> Action | None:  # noqa: ARG002
        now = self.clock()
        self.tokens = min(max(1.0, self.tps), self.tokens + (now - self.updated) * self.tps)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return Answer(4006, f"throttled: over {self.tps:g} requests per second")


class ContentTooLarge(Scenario):
    """Requests above ``max_bytes`` get 2004 (multimedia content refused)."""

    name = "content_too_large"

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def apply(self, request: RequestView, rng: random.Random) -> Action | None:  # noqa: ARG002
        if request.body_bytes > self.max_bytes:
            return Answer(2004, f"message of {request.body_bytes} bytes over {self.max_bytes}")
        return None


class TooManyRecipients(Scenario):
    """Submissions to more than ``max_recipients`` get 3003."""

    name = "too_many_recipients"

    def __init__(self, max_recipients: int) -> None:
        self.max_recipients = max_recipients

    def apply(self, request: RequestView, rng: random.Random) -> Action | None:  # noqa: ARG002
        if request.recipients > self.max_recipients:
            return Answer(3003, f"{request.recipients} recipients, at most {self.max_recipients}")
        return None


def build_chain(settings: MockSettings, clock: Callable[[], float]) -> tuple[Scenario, ...]:
    """The scenario chain the settings ask for, in the order a real MMSC would fail.

    Transport faults first (a broken front end never reads the message), then policy
    limits, then the random status faults, then acceptance.
    """
    chain: list[Scenario] = []
    if settings.latency_ms or settings.latency_jitter_ms:
        chain.append(Latency(settings.latency_ms, settings.latency_jitter_ms))
    if settings.drop_rate:
        chain.append(DropConnection(settings.drop_rate))
    if settings.http_error_rate:
        chain.append(HttpError500(settings.http_error_rate))
    if settings.max_message_bytes is not None:
        chain.append(ContentTooLarge(settings.max_message_bytes))
    if settings.max_recipients is not None:
        chain.append(TooManyRecipients(settings.max_recipients))
    if settings.tps is not None:
        chain.append(Throttled(settings.tps, clock))
    rates = {code: p for code, p in settings.fail_rate if p > 0}
    if rates:
        chain.append(Status(rates))
    chain.append(Happy())
    return tuple(chain)
