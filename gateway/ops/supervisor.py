"""Supervision of the gateway's long-running background tasks (route workers, webhooks).

Theory of operation: ``Supervisor.spawn(name, run)`` starts ``run()`` in a task. When it
raises, the failure is logged with its traceback, counted in
``mm7gw_task_restarts_total{task}`` and ``run()`` is called again after an exponential
back-off, so one store error cannot stop a route for good. A run that lasted
``healthy_after_seconds`` clears the failure streak; after ``max_consecutive_failures``
failures in a row the supervisor gives up: the task is *dead* and ``dead()`` names it,
which makes ``/healthz`` fail so the orchestrator restarts the process. A normal return
of ``run()`` (the component was asked to stop) ends supervision quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

import structlog

log = structlog.get_logger("gateway.ops.supervisor")

#: ``mm7gw_task_restarts_total{task}`` label of the webhook outbox loop; route workers
#: are ``route:<mmsc name>`` (config names only, never anything a client sends).
WEBHOOK_TASK: Final = "webhooks"


def route_task(route: str) -> str:
    """The task label of a route's worker."""
    return f"route:{route}"


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    #: Failures in a row (no healthy run between them) after which the task is dead.
    max_consecutive_failures: int = 10
    #: A run this long counts as healthy: the next failure starts a new streak.
    healthy_after_seconds: float = 60.0


class Supervisor:
    """Runs, restarts and reports on named background tasks.

    Args:
        restarts: called with a task name each time that task is restarted (the counter).
        policy: back-off and give-up rules.
    """

    def __init__(
        self, restarts: Callable[[str], None], policy: RestartPolicy | None = None
    ) -> None:
        self.policy = policy or RestartPolicy()
        self._restarts = restarts
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._dead: dict[str, str] = {}
        self._stopping = asyncio.Event()

    def spawn(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None]:
        """Start supervising ``run`` under ``name``; the task ends when ``run`` returns."""
        self._dead.pop(name, None)
        task = asyncio.create_task(self._supervise(name, run), name=f"supervised-{name}")
        self._tasks[name] = task
        return task

    def stop(self) -> None:
        """Shutdown: restart nothing any more, and end the back-offs now (the components
        are being stopped; none should wait out a pause first)."""
        self._stopping.set()

    def dead(self) -> list[str]:
        """``"<task>: <why>"`` for each task that will not run again."""
        problems = [f"{name}: {why}" for name, why in self._dead.items()]
        for name, task in self._tasks.items():
            if name not in self._dead and task.done() and not task.cancelled():
                error = task.exception()
                if error is not None:  # the supervisor itself failed (BaseException)
                    problems.append(f"{name}: ended with {type(error).__name__}")
        return problems

    async def _supervise(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        policy = self.policy
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the supervision boundary: any failure is restarted
                if time.monotonic() - started >= policy.healthy_after_seconds:
                    failures = 0
                failures += 1
                if failures >= policy.max_consecutive_failures:
                    self._dead[name] = f"failed {failures} times in a row, last: {exc}"[:300]
                    log.critical(
                        "background task dead", task=name, failures=failures, exc_info=True
                    )
                    return
                delay = min(
                    policy.max_backoff_seconds,
                    policy.initial_backoff_seconds * 2 ** (failures - 1),
                )
                log.exception(
                    "background task failed, restarting", task=name, failures=failures, delay=delay
                )
                if self._stopping.is_set():
                    return
                self._restarts(name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    return
            else:
                return
