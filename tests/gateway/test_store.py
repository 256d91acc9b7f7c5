import asyncio
import sqlite3

import pytest

from gateway.errors import IdempotencyConflict
from gateway.store import NewMessage, PartRef, SqliteStore
from gateway.store.sqlite.migrations import CURRENT_VERSION, MIGRATIONS
from gateway.store.transitions import aggregate_status


def new_message(
    mid: str,
    recipients=("+12025550101",),
    *,
    routes=None,
    batch=1,
    key=None,
    digest="h1",
    send_at=100.0,
):
    return NewMessage(
        id=mid,
        api_key="k",
        route="r1",
        recipients=tuple(recipients),
        recipient_routes=tuple(routes or ["r1"] * len(recipients)),
        sender="12345",
        subject="s",
        text="t",
        parts=(PartRef(content_type="image/jpeg", sha256="a" * 64, size=3, content_id="media0"),),
        batch_sizes={"r1": batch, "r2": batch},
        created_at=100.0,
        send_at=send_at,
        expires_at=1000.0,
        idempotency_key=key,
        request_hash=digest,
    )


@pytest.fixture
async def store(any_store):
    """The store contract: these tests run on SQLite and on PostgreSQL."""
    return any_store


@pytest.fixture
async def sqlite_store(tmp_path):
    """For what only the embedded backend has (its file, its thread)."""
    s = SqliteStore(tmp_path / "db.sqlite3")
    await s.open()
    yield s
    await s.close()


async def test_schema_and_wal(sqlite_store, tmp_path):
    assert sqlite_store.schema_version == CURRENT_VERSION
    conn = sqlite3.connect(tmp_path / "db.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    # Every declared migration ran, in order (numbers are reserved per branch, so they may
    # have gaps until everything is merged).
    assert versions == [number for number, _, _ in MIGRATIONS]


async def test_create_and_batching(store):
    record, created = await store.create_message(
        new_message("m1", [f"+1202555010{i}" for i in range(5)], batch=2)
    )
    assert created and record.status == "queued" and len(record.recipients) == 5
    assert await store.queue_depths() == {"r1": 3}
    batches = await store.claim_due("r1", 200.0, 10)
    assert [len(b.recipients) for b in batches] == [2, 2, 1]
    assert all(b.attempts == 1 for b in batches)
    # Claimed batches are not claimed twice.
    assert await store.claim_due("r1", 200.0, 10) == []


async def test_batches_never_mix_routes(store):
    await store.create_message(
        new_message(
            "m1",
            ["+12025550101", "+447400123456", "+12025550102"],
            routes=["r1", "r2", "r1"],
            batch=5,
        )
    )
    r1 = await store.claim_due("r1", 200.0, 10)
    r2 = await store.claim_due("r2", 200.0, 10)
    assert [b.recipients for b in r1] == [("+12025550101", "+12025550102")]
    assert [b.recipients for b in r2] == [("+447400123456",)]


async def test_not_due_before_send_at(store):
    await store.create_message(new_message("m1", send_at=500.0))
    assert await store.claim_due("r1", 200.0, 10) == []
    assert await store.next_due_at("r1") == 500.0
    assert len(await store.claim_due("r1", 500.0, 10)) == 1


async def test_submitted_failed_and_status(store):
    await store.create_message(new_message("m1", ["+12025550101", "+12025550102"], batch=1))
    b1, b2 = await store.claim_due("r1", 200.0, 10)
    await store.mark_submitted(b1.id, "MMSC-1", 201.0)
    record = await store.get_message("m1")
    assert record.status == "queued"
    assert (
        record.recipients[0].status == "submitted"
        and record.recipients[0].mm7_message_id == "MMSC-1"
    )
    await store.mark_failed(b2.id, "rejected", "status 2002 Address Error", 202.0)
    record = await store.get_message("m1")
    assert record.status == "submitted"
    assert record.recipients[1].status == "rejected"
    assert record.last_error == "status 2002 Address Error"
    assert await store.queue_depths() == {}


async def test_retry_reschedules(store):
    await store.create_message(new_message("m1"))
    (batch,) = await store.claim_due("r1", 200.0, 10)
    await store.mark_retry(batch.id, 260.0, "HTTP 500", 200.0)
    assert await store.claim_due("r1", 259.0, 10) == []
    (again,) = await store.claim_due("r1", 260.0, 10)
    assert again.id == batch.id and again.attempts == 2
    assert again.transaction_id == batch.transaction_id


async def test_crash_recovery_requeues_in_flight(tmp_path):
    path = tmp_path / "db.sqlite3"
    first = SqliteStore(path)
    await first.open()
    await first.create_message(new_message("m1"))
    assert len(await first.claim_due("r1", 200.0, 10)) == 1
    await first.close()  # as if the process died with the batch in flight
    second = SqliteStore(path)
    await second.open()
    assert await second.requeue_in_flight(300.0) == 1
    assert len(await second.claim_due("r1", 300.0, 10)) == 1
    await second.close()


async def test_idempotency(store):
    first, created = await store.create_message(new_message("m1", key="abc", digest="h1"))
    again, created_again = await store.create_message(new_message("m2", key="abc", digest="h1"))
    assert created and not created_again and again.id == first.id
    with pytest.raises(IdempotencyConflict):
        await store.create_message(new_message("m3", key="abc", digest="other"))
    assert await store.get_message("m3") is None


async def test_failed_op_does_not_undo_its_group(store):
    """Ops committed together: one failing (idempotency conflict) leaves the others intact."""
    await store.create_message(new_message("m0", key="dup", digest="h1"))
    results = await asyncio.gather(
        *(store.create_message(new_message(f"m{i}")) for i in range(1, 40)),
        store.create_message(new_message("bad", key="dup", digest="different")),
        return_exceptions=True,
    )
    assert isinstance(results[-1], IdempotencyConflict)
    for i in range(1, 40):
        assert (await store.get_message(f"m{i}")) is not None


async def test_cancel(store):
    await store.create_message(new_message("m1", ["+12025550101", "+12025550102"], batch=1))
    (b1,) = await store.claim_due("r1", 200.0, 1)
    await store.mark_submitted(b1.id, "MMSC-1", 201.0)
    plan = await store.cancel_message("m1", 202.0)
    assert plan.found and plan.submitted == [(b1.id, "r1", "MMSC-1")] and plan.in_flight == 0
    record = await store.get_message("m1")
    assert [r.status for r in record.recipients] == ["submitted", "canceled"]
    assert not (await store.cancel_message("nope", 1.0)).found
    # The submitted batch stays flagged until the CancelReq is done or refused.
    assert await store.pending_cancels("r1") == [(b1.id, "m1", "MMSC-1")]
    await store.clear_cancel_request(b1.id, 203.0)
    assert await store.pending_cancels("r1") == []


async def test_cancel_in_flight_is_flagged_for_the_worker(store):
    await store.create_message(new_message("m1", ["+12025550101"], batch=1))
    (b1,) = await store.claim_due("r1", 200.0, 1)
    plan = await store.cancel_message("m1", 201.0)
    assert plan.found and plan.submitted == [] and plan.in_flight == 1
    # The SubmitRsp arrives after the DELETE: mark_submitted says a cancel is due.
    assert await store.mark_submitted(b1.id, "MMSC-1", 202.0) is True
    assert await store.pending_cancels("r1") == [(b1.id, "m1", "MMSC-1")]


async def test_slow_down_retry_gives_the_attempt_back(store):
    await store.create_message(new_message("m1", ["+12025550101"], batch=1))
    for _ in range(3):
        (b1,) = await store.claim_due("r1", 1e9, 1)
        assert b1.attempts == 1
        await store.mark_retry(b1.id, 0.0, "status 4006", 1.0, count_attempt=False)
    (b1,) = await store.claim_due("r1", 1e9, 1)
    await store.mark_retry(b1.id, 0.0, "status 3000", 1.0)
    (b1,) = await store.claim_due("r1", 1e9, 1)
    assert b1.attempts == 2


def test_aggregate_status():
    assert aggregate_status(["queued", "submitted"]) == "queued"
    assert aggregate_status(["submitted", "delivered"]) == "submitted"
    assert aggregate_status(["delivered", "failed"]) == "delivered"
    assert aggregate_status(["expired", "expired"]) == "expired"


async def test_a_cancelled_caller_does_not_kill_the_store(sqlite_store):
    store = sqlite_store
    """An op cancelled while queued is skipped; the store thread keeps serving."""
    blocker = sqlite3.connect(store.path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    pending = asyncio.ensure_future(store.check_writable())
    await asyncio.sleep(0.05)
    queued = asyncio.ensure_future(store.get_message("m1"))
    queued.cancel()
    blocker.execute("COMMIT")
    blocker.close()
    await pending
    assert queued.cancelled()
    record, created = await store.create_message(new_message("m1"))
    assert created and (await store.get_message("m1")) == record


async def test_replace_plan_holds_queued_batches_until_released(store):
    await store.create_message(new_message("m1", ["+12025550101"], batch=1))
    plan = await store.replace_plan("m1", hold_until=10_000.0)
    assert plan.queued == 1 and plan.in_flight == 0 and len(plan.held) == 1
    # Held: not due at 5,000 although it was due from 100.
    assert await store.claim_due("r1", 5_000.0, 10) == []
    await store.release_hold(plan.held)
    (batch,) = await store.claim_due("r1", 5_000.0, 10)
    # In flight now: a second plan holds nothing.
    again = await store.replace_plan("m1", hold_until=10_000.0)
    assert again.in_flight == 1 and again.held == []
    assert batch.message_id == "m1"


async def test_optout_is_checked_in_the_creating_transaction(store):
    """``optout_senders``: a recipient on the suppression list of its sender is refused
    alone; all refused is RecipientsRefused (403) and stores nothing."""
    from dataclasses import replace

    from gateway.store.records import RecipientsRefused
    from gateway.store.sqlite.suppressions import set_suppression

    await store.write(lambda conn: set_suppression(conn, "12025550101", "12345", "stop", 1.0))
    both = ("+12025550101", "+12025550102")
    record, created = await store.create_message(
        replace(new_message("m1", both), optout_senders=("12345", "12345"))
    )
    assert created
    assert [r.status for r in record.recipients] == ["rejected", "queued"]
    assert record.recipients[0].error.startswith("recipient_opted_out: ")
    # Another sender, or no check asked for: not refused.
    for mid, senders in (("m2", ("999", "999")), ("m3", ())):
        changed = replace(new_message(mid, both), optout_senders=senders)
        record, _ = await store.create_message(changed)
        assert [r.status for r in record.recipients] == ["queued", "queued"]
    with pytest.raises(RecipientsRefused) as caught:
        await store.create_message(replace(new_message("m4"), optout_senders=("12345",)))
    assert caught.value.code == "recipient_opted_out"
    assert await store.get_message("m4") is None
    # One SubmitReq per queued recipient: m1's one, m2's two, m3's two; none for m4.
    claimed = await store.claim_due("r1", 1000.0, 10)
    assert sorted(b.message_id for b in claimed) == ["m1", "m2", "m2", "m3", "m3"]
