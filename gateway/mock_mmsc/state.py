"""The mock MMSC's run-time state: settings, scenario chain, accepted messages, counters.

One ``MockState`` per application, stored under the ``STATE`` app key. Settings are
frozen; ``reconfigure`` swaps in a new settings object and rebuilds the scenario chain,
which is how ``POST /admin/config`` changes fault injection between test phases.
"""

from __future__ import annotations

import collections
import itertools
import random
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from gateway.mock_mmsc.callbacks import CallbackClient
from gateway.mock_mmsc.config import MockSettings, apply
from gateway.mock_mmsc.recorder import Recorder
from gateway.mock_mmsc.scenarios import Scenario, build_chain
from gateway.mock_mmsc.stats import Metrics, Stats

#: Accepted submissions remembered for Cancel/Replace (oldest forgotten first), so that a
#: long benchmark cannot grow the mock without bound.
MAX_REMEMBERED = 100_000


@dataclass(slots=True)
class Submission:
    """An accepted SubmitReq, as Cancel/Replace and delivery reports need it."""

    message_id: str
    recipients: tuple[str, ...]
    canceled: bool = False


@dataclass(slots=True)
class MockState:
    settings: MockSettings
    rng: random.Random
    clock: Callable[[], float]
    stats: Stats
    metrics: Metrics
    recorder: Recorder | None
    chain: tuple[Scenario, ...] = ()
    callbacks: CallbackClient | None = None
    submissions: collections.OrderedDict[str, Submission] = field(
        default_factory=collections.OrderedDict
    )
    #: Distinguishes this process's message ids from an earlier run's; "" means "derive
    #: it from the seed" (see ``id_prefix``).
    prefix: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.chain = build_chain(self.settings, self.clock)
        if not self.prefix:
            self.prefix = id_prefix(self.settings.seed)

    def reconfigure(self, values: Mapping[str, object]) -> None:
        """Apply run-time changes (``POST /admin/config``); raises ``MockConfigError``."""
        self.settings = apply(self.settings, values, runtime_only=True)
        self.chain = build_chain(self.settings, self.clock)
        self.stats.resize(self.settings.stats_last)

    def reset(self) -> None:
        """Forget messages and counts; reseed so a phase replays like a fresh start."""
        self.submissions.clear()
        self.stats.reset()
        self.chain = build_chain(self.settings, self.clock)
        if self.settings.seed is not None:
            self.rng.seed(self.settings.seed)

    def new_id(self, kind: str) -> str:
        return f"mock-{self.prefix}-{kind}{next(self._ids)}"

    def remember(self, submission: Submission) -> None:
        self.submissions[submission.message_id] = submission
        while len(self.submissions) > MAX_REMEMBERED:
            self.submissions.popitem(last=False)


def id_prefix(seed: int | None) -> str:
    """The prefix of every MessageID/TransactionID the mock makes up.

    Random without a seed, so ids stay unique across restarts; with one, derived from it
    so that two runs with the same seed answer the same ids. It has its own generator
    (seeded from the seed, not drawn from the shared ``rng``) so that fault and outcome
    draws stay what they were, and ``reset`` replays them without re-drawing the prefix.
    """
    if seed is None:
        return secrets.token_hex(3)
    return f"{random.Random(f'mock-mmsc-ids/{seed}').getrandbits(24):06x}"


STATE = web.AppKey("mm7mock_state", MockState)
