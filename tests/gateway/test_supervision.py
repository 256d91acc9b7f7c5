"""Supervision: a store fault restarts a route worker or the webhook loop (counted, with
back-off) instead of ending it; a task that keeps failing, or a dead store thread, makes
``/healthz`` answer 503; store calls have a deadline instead of waiting forever."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import StoreError
from gateway.ops.supervisor import RestartPolicy
from tests.gateway.callback_helpers import Receiver, bearer, build_config, eventually
from tests.gateway.support import make_config

pytestmark = pytest.mark.asyncio

TO = "+12025550101"
FAST = RestartPolicy(
    initial_backoff_seconds=0.02, max_backoff_seconds=0.1, max_consecutive_failures=4
)


def failing(
    operation: Callable[..., Awaitable[Any]], times: int | None
) -> tuple[Callable[..., Awaitable[Any]], list[int]]:
    """``operation`` raising StoreError on its first ``times`` calls (None: always)."""
    calls = [0]

    @functools.wraps(operation)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if times is None or calls[0] <= times:
            raise StoreError("injected: database is locked")
        return await operation(*args, **kwargs)

    return wrapper, calls


def restarts(gw: Any, task: str) -> float:
    value = gw.gateway.registry.get_sample_value("mm7gw_task_restarts_total", {"task": task})
    return float(value or 0.0)


async def healthz(gw: Any) -> tuple[int, dict[str, Any]]:
    async with gw.session.get(gw.ops + "/healthz") as response:
        return response.status, await response.json()


async def test_route_worker_restarts_after_store_faults_and_keeps_sending(
    tmp_path: Path, mock_mmsc: Any, run_gateway: Any
) -> None:
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url), restart_policy=FAST)
    assert restarts(gw, "route:mock") == 0  # the series exists before the first restart
    store = gw.gateway.store
    # Three failed claims in a row: each one ends the worker loop with slots taken.
    store.claim_due, calls = failing(store.claim_due, 3)
    status, body = await gw.submit({"to": TO, "text": "after the fault"})
    assert status == 202
    await gw.wait_status(body["id"], {"submitted", "delivered"})
    assert calls[0] > 3
    assert restarts(gw, "route:mock") == 3
    # The in-flight window came back whole: a burst of messages still all go out.
    ids = []
    for n in range(12):
        status, body = await gw.submit({"to": TO, "text": f"burst {n}"})
        ids.append(body["id"])
    for message_id in ids:
        await gw.wait_status(message_id, {"submitted", "delivered"})
    assert (await healthz(gw))[0] == 200


async def test_webhook_loop_restarts_after_store_faults(
    tmp_path: Path, mock_mmsc: Any, run_gateway: Any
) -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        mock = await mock_mmsc()
        gw = await run_gateway(
            build_config(tmp_path, mock.url, callback_url=receiver.url), restart_policy=FAST
        )
        store = gw.gateway.store
        store.next_event_at, _ = failing(store.next_event_at, 2)
        # The idle loop asks for its next event, fails, and is restarted; twice.
        await eventually(lambda: restarts(gw, "webhooks") == 2, timeout=10)
        async with gw.session.post(
            gw.api + "/v1/messages", json={"to": TO, "text": "hook"}, headers=bearer()
        ) as response:
            assert response.status == 202
            message_id = (await response.json())["id"]
        await receiver.wait_for(
            lambda events: any(e["data"]["message_id"] == message_id for e in events), timeout=10
        )
        assert restarts(gw, "webhooks") == 2
        assert gw.gateway.supervisor.dead() == []
    finally:
        await receiver.stop()


async def test_healthz_fails_when_a_route_worker_is_dead_for_good(
    tmp_path: Path, mock_mmsc: Any, run_gateway: Any
) -> None:
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url), restart_policy=FAST)
    assert (await healthz(gw))[0] == 200
    store = gw.gateway.store
    store.claim_due, _ = failing(store.claim_due, None)
    gw.gateway.workers["mock"].wake()
    deadline = asyncio.get_running_loop().time() + 10
    while (result := await healthz(gw))[0] != 503:
        assert asyncio.get_running_loop().time() < deadline, result
        await asyncio.sleep(0.02)
    _, body = result
    assert body["status"] == "dead"
    assert len(body["reasons"]) == 1
    assert body["reasons"][0].startswith("route:mock: failed 4 times in a row")
    assert restarts(gw, "route:mock") == 3  # the fourth failure is not restarted
    # Readiness is about accepting work, and the store still takes it.
    async with gw.session.get(gw.ops + "/readyz") as response:
        assert response.status == 200


async def test_dead_store_thread_fails_calls_at_once_and_healthz(
    tmp_path: Path, mock_mmsc: Any, run_gateway: Any
) -> None:
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    store = gw.gateway.store

    def crash(*_args: Any) -> None:
        raise RuntimeError("simulated bug in the store thread")

    store._run_group = crash
    # The call in progress when the thread dies gets an error, not an endless wait.
    with pytest.raises(StoreError, match="simulated bug"):
        await asyncio.wait_for(store.queue_depths(), 5)
    with pytest.raises(StoreError, match="store thread ended"):
        await asyncio.wait_for(store.get_message("m-1"), 1)
    status, body = await healthz(gw)
    assert status == 503
    assert body["reasons"] == [
        "store: store thread ended: RuntimeError: simulated bug in the store thread"
    ]
    async with gw.session.get(gw.ops + "/readyz") as response:
        assert response.status == 503


async def test_stop_ends_a_restart_back_off_instead_of_cancelling_after_the_grace(
    tmp_path: Path, mock_mmsc: Any, run_gateway: Any
) -> None:
    mock = await mock_mmsc()
    slow = RestartPolicy(initial_backoff_seconds=120.0, max_backoff_seconds=120.0)
    gw = await run_gateway(make_config(tmp_path, mock.url), restart_policy=slow)
    store = gw.gateway.store
    store.claim_due, _ = failing(store.claim_due, None)
    gw.gateway.workers["mock"].wake()
    await eventually(lambda: restarts(gw, "route:mock") == 1, timeout=10)
    task = gw.gateway.worker_tasks["mock"]
    await gw.gateway.stop()  # the worker is waiting out a 120 s back-off
    assert task.done()
    assert not task.cancelled()  # it ended by itself, not at the end of the drain grace
    assert gw.gateway.supervisor.dead() == []
