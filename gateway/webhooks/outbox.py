# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""The webhook worker: delivers outbox events, signed, retried, ordered per message.

Theory of operation: events are rows written in the same transaction as the state
change they describe (see ``gateway/store/``), so a crash can lose no event; it can only cause
one to be sent twice (receivers dedupe on the event ``id``). The worker repeatedly takes
the *head* event of each stream (a message, or one inbound MMS) that is due and not
already being sent, and POSTs it. A stream never has two events in flight, and event
n+1 waits until event n was delivered or dead-lettered: per-message order holds. At most
``per_destination_concurrency`` sends go to one destination (scheme, host, port) at a
time, so a receiver that hangs holds only its own share of the slots. A failed attempt
is rescheduled with exponential back-off and jitter; after ``max_attempts`` or
``max_age_seconds`` the event is dead-lettered (state ``dead``), counted, and listed by
``GET /v1/webhooks/dead-letters``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import socket
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from gateway.errors import StoreError
from gateway.media.fetch import address_allowed
from gateway.ops.log_context import bound_context
from gateway.store.records import OutboxEvent
from gateway.webhooks.signing import SIGNATURE_HEADER, webhook_signature

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Coroutine

    from gateway.ops.metrics import Metrics
    from gateway.store import Store

log = structlog.get_logger("gateway.webhooks")

_USER_AGENT: Final = "mm7-gateway-webhooks/1"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    timeout_seconds: float = 10.0
    max_attempts: int = 12
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 600.0
    multiplier: float = 2.0
    #: Give up on an event this long after it was created, whatever its attempt count.
    max_age_seconds: float = 24 * 3600.0
    concurrency: int = 8
    #: Sends in flight to one destination (scheme, host, port) at most: one slow receiver
    #: must not take every slot from the others.
    per_destination_concurrency: int = 4
    #: How often an idle worker looks for events written by other components.
    poll_interval_seconds: float = 0.5
    #: Webhook URLs from the configuration (API keys' ``callback_url``): trusted. Any
    #: other URL came from a client and is only connected to on allowed addresses.
    trusted_urls: frozenset[str] = frozenset()
    #: Client URLs may resolve to loopback/private addresses (``webhooks.allow_private_urls``).
    allow_private_urls: bool = False


class GuardedResolver(AbstractResolver):
    """DNS for client-given webhook URLs: answers on refused addresses (our own network,
    link-local/metadata) fail the lookup, so the connection can only use vetted addresses
    (no window for a DNS answer to change between a check and the connect)."""

    def __init__(self, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        self.allow_private = allow_private
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self.inner.resolve(host, port, family)
        # One refused answer refuses the host: round-robin could pick it next time.
        for answer in answers:
            address = ipaddress.ip_address(str(answer["host"]).split("%", 1)[0])
            if not address_allowed(address, self.allow_private):
                # With an errno, aiohttp keeps the text (strerror) in its error, so the
                # dead letter says why; a bare OSError(message) shows as "[None]".
                raise OSError(
                    errno.EACCES, f"webhook host {host} resolves to a refused address ({address})"
                )
        return answers

    async def close(self) -> None:
        await self.inner.close()


def destination(url: str) -> str:
    """The key webhook sends are capped by: scheme, host and port of the URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url  # unusable anyway; the attempt fails on its own
    host = (parts.hostname or "").lower()
    return f"{parts.scheme.lower()}://{host}:{port or _DEFAULT_PORTS.get(parts.scheme, 0)}"


def backoff(settings: WebhookSettings, attempts: int, rng: random.Random) -> float:
    """Delay before the next attempt after ``attempts`` failed ones (±10 % jitter)."""
    base = settings.initial_backoff_seconds * settings.multiplier ** max(0, attempts - 1)
    return min(settings.max_backoff_seconds, base) * rng.uniform(0.9, 1.1)


class Outbox:
    def __init__(
        self,
        store: Store,
        settings: WebhookSettings,
        secrets: Callable[[str | None], str],
        metrics: Metrics,
        clock: Callable[[], float],
        rng: random.Random,
        *,
        spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], asyncio.Task[None]]
        | None = None,
    ) -> None:
        self.store = store
        #: Starts the worker loop: the app's supervisor (restart on failure) in production.
        self.spawn = spawn or (lambda run: asyncio.create_task(run(), name="webhook-outbox"))
        self.settings = settings
        self.secrets = secrets
        self.metrics = metrics
        self.clock = clock
        self.rng = rng
        self.session: aiohttp.ClientSession | None = None
        self.guarded_session: aiohttp.ClientSession | None = None
        self.task: asyncio.Task[None] | None = None
        self.sending: dict[str, asyncio.Task[None]] = {}
        #: Sends in flight per destination, and the streams whose head event waits for
        #: its destination to have a free slot (left out of the next look-up).
        self.per_destination: Counter[str] = Counter()
        self.held: set[str] = set()
        self.wake_event = asyncio.Event()
        self.stopping = False

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
        self.session = aiohttp.ClientSession(timeout=timeout)
        self.guarded_session = aiohttp.ClientSession(
            timeout=timeout,
            connector=aiohttp.TCPConnector(
                resolver=GuardedResolver(self.settings.allow_private_urls)
            ),
        )
        await self.refresh_dead_gauge()
        self.task = self.spawn(self.run)

    async def stop(self) -> None:
        """Stop taking events; let attempts in flight finish (bounded by their timeout)."""
        self.stopping = True
        self.wake_event.set()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        if self.sending:
            await asyncio.gather(*self.sending.values(), return_exceptions=True)
        if self.session is not None:
            await self.session.close()
            self.session = None
        if self.guarded_session is not None:
            await self.guarded_session.close()
            self.guarded_session = None

    def wake(self) -> None:
        """Something was just committed to the outbox: look now rather than at the next poll."""
        self.wake_event.set()

    async def refresh_dead_gauge(self) -> None:
        counts = await self.store.outbox_counts()
        self.metrics.dead_letters.set(counts.get("dead", 0))

    async def run(self) -> None:
        while not self.stopping:
            self.wake_event.clear()
            free = self.settings.concurrency - len(self.sending)
            events = []
            if free > 0:
                try:
                    events = await self.store.due_events(
                        self.clock(), free, (*self.sending, *self.held)
                    )
                except StoreError as exc:
                    # The events stay in the database; try again after a pause.
                    log.exception("cannot read the webhook outbox", error=str(exc))
                    await asyncio.sleep(self.settings.poll_interval_seconds)
                    continue
            for event in events:
                target = destination(event.url)
                if self.per_destination[target] >= self.settings.per_destination_concurrency:
                    self.held.add(event.stream)
                    continue
                self.per_destination[target] += 1
                task = asyncio.create_task(
                    self._send(event, target), name=f"webhook-{event.event_id}"
                )
                self.sending[event.stream] = task
            if events:
                continue
            await self._idle()

    async def _idle(self) -> None:
        timeout = self.settings.poll_interval_seconds
        next_at = await self.store.next_event_at()
        # Held events are due already; their turn comes when a send ends (which wakes us).
        if next_at is not None and not (self.held and next_at <= self.clock()):
            timeout = max(0.0, min(timeout, next_at - self.clock()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake_event.wait(), timeout)

    async def _send(self, event: OutboxEvent, target: str) -> None:
        try:
            with bound_context(event_id=event.event_id, event_type=event.event_type):
                error = await self._post(event)
                try:
                    await self._record(event, error)
                except StoreError as exc:
                    # Not recorded: the event is still pending and will be sent again
                    # (receivers dedupe on the event id).
                    log.exception("cannot record a webhook attempt", error=str(exc))
        finally:
            self.sending.pop(event.stream, None)
            self.per_destination[target] -= 1
            if self.per_destination[target] <= 0:
                del self.per_destination[target]
            self.held.clear()  # a slot is free: look at every stream again
            self.wake_event.set()

    async def _post(self, event: OutboxEvent) -> str | None:
        """One attempt; returns ``None`` on a 2xx answer, else what went wrong."""
        trusted = event.url in self.settings.trusted_urls
        session = self.session if trusted else self.guarded_session
        if session is None:
            return "worker stopped"
        body = event.body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            "X-MM7GW-Event-ID": event.event_id,
            "X-MM7GW-Event-Type": event.event_type,
            SIGNATURE_HEADER: webhook_signature(
                self.secrets(event.api_key), body, int(self.clock())
            ),
        }
        try:
            # Redirects are not followed: a signed event goes only where it was addressed.
            async with session.post(
                event.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                # The receiver's body is of no interest; do not buffer an arbitrary amount.
                response.release()
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except TimeoutError:
            return "timeout"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # ValueError: a URL aiohttp cannot use; it will not get better, but retrying
            # keeps one rule for every failure and ends in the dead-letter list anyway.
            return f"{type(exc).__name__}: {exc}"[:300]

    async def _record(self, event: OutboxEvent, error: str | None) -> None:
        now = self.clock()
        if error is None:
            await self.store.finish_event(event.id, "delivered", None, now)
            self.metrics.webhook_deliveries_total.labels(outcome="delivered").inc()
            log.info("webhook delivered", attempts=event.attempts + 1)
            return
        attempts = event.attempts + 1
        too_old = now - event.created_at >= self.settings.max_age_seconds
        if attempts >= self.settings.max_attempts or too_old:
            await self.store.finish_event(event.id, "dead", error, now)
            self.metrics.webhook_deliveries_total.labels(outcome="dead_letter").inc()
            self.metrics.dead_letters.inc()
            log.warning("webhook dead-lettered", attempts=attempts, error=error)
            return
        next_at = now + backoff(self.settings, attempts, self.rng)
        await self.store.retry_event(event.id, next_at, error, now)
        self.metrics.webhook_deliveries_total.labels(outcome="retry").inc()
        log.info("webhook retry scheduled", attempts=attempts, error=error)
