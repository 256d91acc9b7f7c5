"""Console logins: server-side sessions, CSRF tokens and a login rate limit.

Sessions live in memory (a restart logs operators out, which is acceptable for a console
and keeps the secret off disk): the cookie holds only a random id. Each session has its
own CSRF token, embedded in every form; the login form, which has no session yet, uses a
double-submit token (a cookie and a hidden field that must match).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

SESSION_COOKIE: Final = "mm7gw_console"
LOGIN_CSRF_COOKIE: Final = "mm7gw_console_login"
#: Failed logins allowed per client address within ``LOGIN_WINDOW_SECONDS``.
LOGIN_ATTEMPTS: Final = 5
LOGIN_WINDOW_SECONDS: Final = 60.0


@dataclass(slots=True)
class Session:
    id: str
    user: str  # the admin API key's name
    csrf: str
    expires_at: float


class Sessions:
    """Logged-in operators by session id; a session ends at logout or ``ttl`` after login."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl_seconds
        self.clock = clock
        self._items: dict[str, Session] = {}

    def create(self, user: str) -> Session:
        now = self.clock()
        # Drop expired sessions here, so the table cannot grow without bound.
        for sid in [s.id for s in self._items.values() if s.expires_at <= now]:
            del self._items[sid]
        session = Session(
            id=secrets.token_urlsafe(32),
            user=user,
            csrf=secrets.token_urlsafe(32),
            expires_at=now + self.ttl,
        )
        self._items[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        session = self._items.get(session_id or "")
        if session is None:
            return None
        if session.expires_at <= self.clock():
            del self._items[session.id]
            return None
        return session

    def end(self, session_id: str) -> None:
        self._items.pop(session_id, None)


def tokens_match(expected: str | None, given: object) -> bool:
    """Constant-time comparison of a CSRF token; a missing one never matches."""
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


class LoginLimiter:
    """At most ``attempts`` failed logins per client address in a sliding window."""

    def __init__(
        self,
        attempts: int = LOGIN_ATTEMPTS,
        window_seconds: float = LOGIN_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.attempts = attempts
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again (0: now)."""
        failures = self._failures.get(client)
        if not failures:
            return 0.0
        now = self.clock()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if len(failures) < self.attempts:
            return 0.0
        return failures[0] + self.window - now

    def failed(self, client: str) -> None:
        self._failures.setdefault(client, deque()).append(self.clock())

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
