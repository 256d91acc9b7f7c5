"""The store's cancel invariant: a batch with a cancel request is never claimed again.

A DELETE that finds a SubmitReq in flight answers 200 and flags the batch. Whatever ends
that attempt without the MMSC's acceptance (a retry-class answer or a timeout, a crash
and the recovery at start, a shutdown) must end the batch ``canceled``, with its
recipients and a ``message.status`` event, never queue it for another SubmitReq.

Only ``Store`` interface methods are used, so the ``backend`` fixture can be
parametrised over every backend.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.store import NewMessage, SqliteStore, Store
from gateway.store.postgresql import PostgresStore
from tests.gateway import pg_support

HOOK = "http://127.0.0.1:9/hook"
FAR_FUTURE = 1e12


def message(mid: str, recipients: tuple[str, ...] = ("+12025550101",)) -> NewMessage:
    return NewMessage(
        id=mid,
        api_key="k",
        route="r1",
        recipients=recipients,
        recipient_routes=("r1",) * len(recipients),
        sender="12345",
        subject=None,
        text="t",
        parts=(),
        batch_sizes={"r1": 1},
        created_at=100.0,
        send_at=100.0,
        expires_at=100_000.0,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """A factory of store instances over one database (a new one = a restarted process:
    on PostgreSQL the same instance id, whose old claims it takes back at start)."""
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "db.sqlite3")
    url = request.getfixturevalue("pg_url")
    pg_support.truncate_all(url)
    return lambda: PostgresStore(url, pool_size=4, instance_id="gw-a")


@pytest.fixture
async def store(backend: Callable[[], Store]) -> AsyncIterator[Store]:
    s = backend()
    await s.open()
    await s.sync_webhook_targets({"k": HOOK})
    yield s
    await s.close()


async def status_events(store: Store, message_id: str) -> list[dict[str, Any]]:
    """Every ``message.status`` event of a message, in order (each taken as delivered)."""
    found = []
    while events := await store.due_events(FAR_FUTURE, 100, ()):
        for event in events:
            await store.finish_event(event.id, "delivered", None, 0.0)
            body = json.loads(event.body)
            if event.stream == message_id and event.event_type == "message.status":
                found.append(body["data"])
    return found


async def in_flight_then_canceled(store: Store, mid: str = "m1") -> int:
    """A message whose only batch is claimed, then DELETEd: returns the batch id."""
    await store.create_message(message(mid))
    (batch,) = await store.claim_due("r1", 200.0, 10)
    plan = await store.cancel_message(mid, 201.0)
    assert plan.found and plan.in_flight == 1 and plan.submitted == []
    return batch.id


async def assert_canceled_for_good(store: Store, mid: str = "m1") -> None:
    record = await store.get_message(mid)
    assert record is not None
    assert record.status == "canceled"
    assert [r.status for r in record.recipients] == ["canceled"]
    assert "canceled while in flight" in (record.recipients[0].error or "")
    assert await store.claim_due("r1", FAR_FUTURE, 10) == []
    assert await store.next_due_at("r1") is None
    assert await store.queue_depths() == {}
    events = await status_events(store, mid)
    assert events[-1]["status"] == "canceled"
    assert events[-1]["recipients"][0]["status"] == "canceled"


@pytest.mark.parametrize("count_attempt", [True, False], ids=["retry", "slow-down"])
async def test_a_failed_attempt_of_a_canceled_batch_ends_it_canceled(
    store: Store, count_attempt: bool
) -> None:
    batch_id = await in_flight_then_canceled(store)
    canceled = await store.mark_retry(
        batch_id, 202.0, "timeout", 202.0, count_attempt=count_attempt
    )
    assert canceled is True
    await assert_canceled_for_good(store)


async def test_retry_without_a_cancel_request_queues_the_batch(store: Store) -> None:
    await store.create_message(message("m1"))
    (batch,) = await store.claim_due("r1", 200.0, 10)
    assert await store.mark_retry(batch.id, 300.0, "timeout", 200.0) is False
    (again,) = await store.claim_due("r1", 300.0, 10)
    assert again.id == batch.id


async def test_crash_recovery_cancels_instead_of_requeueing(
    backend: Callable[[], Store], store: Store
) -> None:
    await in_flight_then_canceled(store, "m1")
    await store.create_message(message("m2"))
    (other,) = await store.claim_due("r1", 200.0, 10)
    await store.close()  # killed with both batches in flight
    restarted = backend()
    await restarted.open()
    try:
        # Only the batch without a cancel request is queued again.
        assert await restarted.requeue_in_flight(300.0) == 1
        (again,) = await restarted.claim_due("r1", 300.0, 10)
        assert again.id == other.id and again.message_id == "m2"
        await restarted.mark_submitted(again.id, "MMSC-2", 301.0)
        await assert_canceled_for_good(restarted, "m1")
    finally:
        await restarted.close()
        await store.open()  # the fixture closes it


async def test_shutdown_release_cancels_instead_of_requeueing(store: Store) -> None:
    batch_id = await in_flight_then_canceled(store)
    await store.release([batch_id], 202.0)
    await assert_canceled_for_good(store)


async def test_accepted_attempt_still_gets_its_cancel_req(store: Store) -> None:
    """The SubmitRsp said 1000: the MMSC has it, so a CancelReq is due (not canceled here)."""
    batch_id = await in_flight_then_canceled(store)
    assert await store.mark_submitted(batch_id, "MMSC-1", 202.0) is True
    assert await store.pending_cancels("r1") == [(batch_id, "m1", "MMSC-1")]
    # Its later retry-class outcome cannot exist, but a stray retry must not requeue it.
    assert await store.mark_retry(batch_id, 203.0, "x", 203.0) is False
    assert await store.claim_due("r1", FAR_FUTURE, 10) == []


async def test_other_batches_of_the_message_are_unaffected_until_their_turn(
    store: Store,
) -> None:
    await store.create_message(message("m1", ("+12025550101", "+12025550102")))
    (first,) = await store.claim_due("r1", 200.0, 1)
    plan = await store.cancel_message("m1", 201.0)
    # The queued batch is canceled at once, the in-flight one when its attempt ends.
    assert plan.in_flight == 1
    record = await store.get_message("m1")
    assert record is not None
    assert sorted(r.status for r in record.recipients) == ["canceled", "queued"]
    assert await store.mark_retry(first.id, 202.0, "HTTP 503", 202.0) is True
    record = await store.get_message("m1")
    assert record is not None
    assert [r.status for r in record.recipients] == ["canceled", "canceled"]
    assert record.status == "canceled"
    assert await store.claim_due("r1", FAR_FUTURE, 10) == []
