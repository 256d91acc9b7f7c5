"""The Store contract, run against both backends: SQLite on tmp_path and PostgreSQL on a
database created for the session (``pg_support``). Plus what only the shared backend
has: two stores ("two gateways") on one database, leases, concurrent migrations.
"""

import asyncio
import threading

import psycopg
import pytest

from gateway.errors import IdempotencyConflict, NotFoundError
from gateway.store import NewMessage, PartRef, SqliteStore
from gateway.store.postgresql import PostgresStore
from gateway.store.postgresql.migrations import CURRENT_VERSION, MIGRATIONS, migrate
from gateway.store.records import InboundPart, InboundRow, ReportRow
from tests.gateway import pg_support


@pytest.fixture(scope="session")
def pg_url():
    yield from pg_support.session_database()


def new_message(mid, recipients=("+12025550101",), *, batch=1, key=None, digest="h1",
                callback="http://127.0.0.1:9/hook", send_at=100.0):  # fmt: skip
    return NewMessage(
        id=mid,
        api_key="k",
        route="r1",
        recipients=tuple(recipients),
        recipient_routes=("r1",) * len(recipients),
        sender="12345",
        subject="s",
        text="t",
        parts=(PartRef(content_type="image/jpeg", sha256="a" * 64, size=3, content_id="media0"),),
        batch_sizes={"r1": batch},
        created_at=100.0,
        send_at=send_at,
        expires_at=1000.0,
        idempotency_key=key,
        request_hash=digest,
        callback_url=callback,
    )


def report(mm7_id, recipient="+12025550101", status="Retrieved", *, state="delivered", at=300.0,
           key=None):  # fmt: skip
    return ReportRow(
        kind="delivery", mmsc="r1", dedupe_key=key or f"{mm7_id}-{recipient}-{status}-{at}",
        mm7_message_id=mm7_id, recipient=recipient, sender="12345", mm_status=status,
        mm_status_extension=None, status_text=None, mapped_state=state, report_at=at,
        received_at=at, transaction_id=None,
    )  # fmt: skip


def inbound_row(iid, dedupe, *, text="hello", optout=None):
    return InboundRow(
        id=iid, mmsc="r1", dedupe_key=dedupe, api_key="k", sender="+12025550101",
        recipient="12345", recipients=("12345",), subject=None, text=text, linked_id=None,
        transaction_id="t1", optout=optout, sent_at=None, received_at=100.0,
        parts=(InboundPart(content_type="text/plain", sha256="b" * 64, size=5, text=text,
                           content_id=None, content_location=None, charset="utf-8"),),
    )  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request, tmp_path):
    """``open_store()`` makes another store on the same database (another "gateway")."""
    opened = []

    async def open_store(instance="gw-a", lease=30.0):
        if request.param == "sqlite":
            s = SqliteStore(tmp_path / "db.sqlite3")
        else:
            s = PostgresStore(url, pool_size=4, instance_id=instance, lease_seconds=lease)
        await s.open()
        opened.append(s)
        return s

    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        pg_support.truncate_all(url)
    yield request.param, open_store
    for s in opened:
        await s.close()


@pytest.fixture
async def pg_stores(pg_url):
    """Opens PostgreSQL stores on the session database, emptied first."""
    pg_support.truncate_all(pg_url)
    opened = []

    async def open_store(instance="gw-a", lease=30.0):
        s = PostgresStore(pg_url, pool_size=4, instance_id=instance, lease_seconds=lease)
        await s.open()
        opened.append(s)
        return s

    yield open_store
    for s in opened:
        await s.close()


@pytest.fixture
async def store(backend):
    _, open_store = backend
    return await open_store()


# -- messages, batches, idempotency -----------------------------------------------------------


async def test_create_get_and_batching(store):
    record, created = await store.create_message(
        new_message("m1", [f"+1202555010{i}" for i in range(5)], batch=2)
    )
    assert created and record.status == "queued" and len(record.recipients) == 5
    assert await store.get_message("m1") == record
    assert await store.get_message("nope") is None
    assert await store.queue_depths() == {"r1": 3}
    batches = await store.claim_due("r1", 200.0, 10)
    assert [len(b.recipients) for b in batches] == [2, 2, 1]
    assert [b.transaction_id for b in batches] == ["m1-1", "m1-2", "m1-3"]
    assert await store.claim_due("r1", 200.0, 10) == []
    assert (await store.get_message("m1")).attempts == 3


async def test_idempotency(store):
    first, created = await store.create_message(new_message("m1", key="abc", digest="h1"))
    again, created_again = await store.create_message(new_message("m2", key="abc", digest="h1"))
    assert created and not created_again and again.id == first.id
    assert (await store.find_idempotent("k", "abc"))[1] == "h1"
    with pytest.raises(IdempotencyConflict):
        await store.create_message(new_message("m3", key="abc", digest="other"))
    assert await store.get_message("m3") is None


async def test_concurrent_duplicates_make_one_message(backend):
    _, open_store = backend
    a, b = await open_store("gw-a"), await open_store("gw-b")
    results = await asyncio.gather(
        *(s.create_message(new_message(f"m{i}", key="same")) for i, s in enumerate([a, b] * 4))
    )
    assert len({record.id for record, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_state_changes_write_status_events(store):
    await store.create_message(new_message("m1", ["+12025550101", "+12025550102"]))
    b1, b2 = await store.claim_due("r1", 200.0, 10)
    await store.mark_submitted(b1.id, "MMSC-1", 201.0)
    await store.mark_failed(b2.id, "rejected", "status 2002", 202.0)
    record = await store.get_message("m1")
    assert [r.status for r in record.recipients] == ["submitted", "rejected"]
    assert record.status == "submitted" and record.last_error == "status 2002"
    assert await store.outbox_counts() == {"pending": 2}
    assert await store.queue_depths() == {}


async def test_retry_keeps_transaction_id_and_slow_down_refunds(store):
    await store.create_message(new_message("m1"))
    (batch,) = await store.claim_due("r1", 200.0, 10)
    await store.mark_retry(batch.id, 260.0, "HTTP 500", 200.0)
    assert await store.next_due_at("r1") == 260.0
    assert await store.claim_due("r1", 259.0, 10) == []
    (again,) = await store.claim_due("r1", 260.0, 10)
    assert again.attempts == 2 and again.transaction_id == batch.transaction_id
    await store.mark_retry(again.id, 0.0, "status 4006", 261.0, count_attempt=False)
    (third,) = await store.claim_due("r1", 262.0, 10)
    assert third.attempts == 2
    await store.release([third.id], 263.0)
    assert len(await store.claim_due("r1", 263.0, 10)) == 1


async def test_cancel_and_pending_cancels(store):
    await store.create_message(new_message("m1", ["+12025550101", "+12025550102"]))
    (b1,) = await store.claim_due("r1", 200.0, 1)
    plan = await store.cancel_message("m1", 201.0)
    assert plan.found and plan.in_flight == 1 and plan.submitted == []
    assert [r.status for r in (await store.get_message("m1")).recipients] == [
        "queued", "canceled",
    ]  # fmt: skip
    assert await store.mark_submitted(b1.id, "MMSC-1", 202.0) is True
    assert await store.pending_cancels("r1") == [(b1.id, "m1", "MMSC-1")]
    await store.clear_cancel_request(b1.id, 203.0)
    assert await store.pending_cancels("r1") == []
    assert not (await store.cancel_message("nope", 1.0)).found


async def test_replace_plan_holds_queued_batches(store):
    await store.create_message(new_message("m1", ["+12025550101", "+12025550102"]))
    plan = await store.replace_plan("m1", hold_until=900.0)
    assert plan.queued == 2 and plan.routes == ("r1",) and len(plan.held) == 2
    assert await store.claim_due("r1", 800.0, 10) == []
    await store.release_hold(plan.held)
    parts = (PartRef(content_type="text/plain", sha256="c" * 64, size=1, content_id="p"),)
    record = await store.replace_content(
        "m1", subject="new", text="x", parts=parts, fallback=None, original_bytes=1,
        adapted_bytes=1, now=300.0,
    )  # fmt: skip
    assert record.subject == "new" and record.parts == parts
    assert len(await store.claim_due("r1", 800.0, 10)) == 2


# -- claims, leases, cancel invariant ------------------------------------------------------------


async def test_two_gateways_never_claim_a_batch_twice(backend):
    _, open_store = backend
    a, b = await open_store("gw-a"), await open_store("gw-b")
    for i in range(60):
        await a.create_message(new_message(f"m{i}", [f"+120255501{i:02d}"]))

    async def drain(s):
        got = []
        while batch := await s.claim_due("r1", 200.0, 3):
            got.extend(x.id for x in batch)
        return got

    results = await asyncio.gather(drain(a), drain(b), drain(a), drain(b))
    claimed = [i for r in results for i in r]
    assert len(claimed) == 60 and len(set(claimed)) == 60


async def test_skip_locked_passes_over_a_batch_being_claimed(pg_stores, pg_url):
    a = await pg_stores("gw-a")
    await a.create_message(new_message("m1"))
    await a.create_message(new_message("m2", send_at=101.0))
    with psycopg.connect(pg_url) as other:  # a peer mid-claim holds m1's batch row
        other.execute("SELECT id FROM batches WHERE message_id = 'm1' FOR UPDATE")
        got = await asyncio.wait_for(a.claim_due("r1", 200.0, 10), 10)
        assert [x.message_id for x in got] == ["m2"]


async def test_expired_lease_is_claimed_again_with_its_transaction_id(pg_stores):
    dead, alive = await pg_stores("gw-dead", lease=30.0), await pg_stores("gw-b")
    await dead.create_message(new_message("m1"))
    (first,) = await dead.claim_due("r1", 200.0, 10)
    assert await alive.claim_due("r1", 229.0, 10) == []  # lease still live
    (again,) = await alive.claim_due("r1", 231.0, 10)
    assert again.id == first.id and again.transaction_id == first.transaction_id
    assert again.attempts == 2
    # The dead instance's late retry must not queue the batch its peer now holds.
    await dead.mark_retry(first.id, 0.0, "late", 232.0)
    assert await alive.claim_due("r1", 233.0, 10) == []
    await alive.mark_submitted(again.id, "MMSC-1", 234.0)
    assert (await alive.get_message("m1")).status == "submitted"


async def test_requeue_leaves_a_live_lease_alone(pg_stores):
    a, b = await pg_stores("gw-a", lease=30.0), await pg_stores("gw-b")
    await a.create_message(new_message("m1"))
    await a.create_message(new_message("m2", send_at=150.0))
    (live,) = await a.claim_due("r1", 200.0, 1)
    (stale,) = await a.claim_due("r1", 100.0 + 80.0, 1)  # lease ends at 210
    assert {live.message_id, stale.message_id} == {"m1", "m2"}
    assert await b.requeue_in_flight(215.0) == 1  # only the lease ending at 210 ...
    (back,) = await b.claim_due("r1", 215.0, 10)  # ... and the live one stays claimed
    assert back.id == stale.id


async def test_a_cancel_requested_batch_is_never_claimed_again(pg_stores):
    # PostgreSQL only here: the same invariant is being added to SQLite in parallel.
    dead, peer = await pg_stores("gw-dead", lease=30.0), await pg_stores("gw-b")
    await dead.create_message(new_message("m1"))
    await dead.claim_due("r1", 200.0, 10)
    plan = await peer.cancel_message("m1", 201.0)
    assert plan.in_flight == 1
    # The holder died: after the lease the batch is canceled, never sent again.
    assert await peer.claim_due("r1", 1000.0, 10) == []
    record = await peer.get_message("m1")
    assert record.status == "canceled" and await peer.queue_depths() == {}
    assert await peer.requeue_in_flight(2000.0) == 0


# -- reports ----------------------------------------------------------------------------------------


async def test_reports_dedupe_and_unmatched_then_applied(store):
    await store.create_message(new_message("m1"))
    (b1,) = await store.claim_due("r1", 200.0, 1)
    # The report overtakes our SubmitRsp commit: kept unmatched ...
    early = await store.store_report(report("MMSC-1", at=250.0))
    assert early.outcome == "unmatched"
    assert (await store.store_report(report("MMSC-1", at=250.0))).outcome == "duplicate"
    # ... and applied, after the submitted event, when the SubmitRsp is recorded.
    await store.mark_submitted(b1.id, "MMSC-1", 260.0)
    assert (await store.get_message("m1")).status == "delivered"
    assert await store.report_counts() == {"applied": 1}
    stale = await store.store_report(report("MMSC-1", status="Expired", state="expired", at=1.0))
    assert stale.outcome == "unchanged" and stale.state == "delivered"
    events = await store.due_events(1e9, 10, ())
    assert [e.event_type for e in events] == ["message.status"]  # head of the stream only


# -- inbound, suppressions ----------------------------------------------------------------------------


async def test_inbound_dedupe_and_suppression(store):
    stop = inbound_row("in1", "d1", text="STOP", optout="stop")
    assert await store.store_inbound(stop, ("http://127.0.0.1:9/in", {"x": 1})) == ("in1", True)
    assert await store.store_inbound(inbound_row("in2", "d1"), None) == ("in1", False)
    assert await store.suppressed_numbers([("12025550101", "12345"), ("+1999", "1")]) == [
        "12025550101"
    ]
    got = await store.get_inbound("in1")
    assert got["text"] == "STOP" and got["parts"][0]["sha256"] == "b" * 64
    assert await store.media_type_of("b" * 64) == "text/plain"
    await store.store_inbound(inbound_row("in3", "d3", text="START", optout="start"), None)
    assert await store.suppressed_numbers([("+12025550101", "12345")]) == []
    listed = await store.list_inbound("k", 10, None)
    assert [m["id"] for m in listed] == ["in3", "in1"]
    assert [m["id"] for m in await store.list_inbound("k", 10, "in3")] == ["in1"]
    assert await store.outbox_counts() == {"pending": 1}


# -- outbox -------------------------------------------------------------------------------------------


async def test_outbox_head_of_stream_retry_and_dead_letters(store):
    await store.sync_webhook_targets({"k": "http://127.0.0.1:9/default"})
    await store.sync_webhook_targets({"k": "http://127.0.0.1:9/default"})  # restart: no clash
    await store.create_message(new_message("m1", callback=None))
    await store.create_message(new_message("m2", callback=None))
    for batch in await store.claim_due("r1", 200.0, 10):
        await store.mark_submitted(batch.id, f"MMSC-{batch.message_id}", 201.0)
    await store.cancel_message("m1", 202.0)
    await store.store_report(report("MMSC-m1", at=300.0))
    heads = await store.due_events(1e9, 10, ())
    assert [e.stream for e in heads] == ["m1", "m2"]
    assert all(e.url == "http://127.0.0.1:9/default" for e in heads)
    # While they are being sent (busy here), nothing more of those streams is due.
    assert await store.due_events(1e9, 10, ("m1", "m2")) == []
    first = heads[0]
    await store.retry_event(first.id, 500.0, "HTTP 500", 400.0)
    assert await store.due_events(450.0, 10, ("m2",)) == []  # m1's head is due at 500
    assert 201.0 <= await store.next_event_at() <= 500.0
    await store.finish_event(first.id, "dead", "gave up", 501.0)
    await store.finish_event(heads[1].id, "delivered", None, 501.0)
    (nxt,) = await store.due_events(1e9, 10, ())
    assert nxt.stream == "m1" and nxt.id > first.id
    dead = await store.dead_letters("k", 10)
    assert [d["event_id"] for d in dead] == [first.event_id] and dead[0]["attempts"] == 2
    assert await store.dead_letters("other", 10) == []
    assert await store.outbox_counts() == {"pending": 1, "dead": 1, "delivered": 1}


async def test_pg_an_event_being_sent_by_one_instance_is_not_sent_by_another(pg_stores):
    a, b = await pg_stores("gw-a", lease=30.0), await pg_stores("gw-b", lease=30.0)
    await a.create_message(new_message("m1"))
    (batch,) = await a.claim_due("r1", 200.0, 1)
    await a.mark_submitted(batch.id, "MMSC-1", 201.0)
    await a.store_report(report("MMSC-1", at=300.0))  # a second event on the stream
    (head,) = await a.due_events(400.0, 10, ())
    assert await b.due_events(400.0, 10, ()) == []  # a is sending it: b waits
    assert await b.next_event_at() == 430.0  # ... until a's lease ends, without polling
    (again,) = await b.due_events(431.0, 10, ())  # a died: b sends it after the lease
    assert again.id == head.id
    await b.finish_event(again.id, "delivered", None, 432.0)
    (nxt,) = await a.due_events(433.0, 10, ())
    assert nxt.stream == "m1" and nxt.id > head.id


async def test_check_writable(store):
    await store.check_writable()


# -- PostgreSQL only: migrations, media --------------------------------------------------------------------


def test_pg_migrations_idempotent_and_safe_concurrently(pg_url):
    name = pg_support.create_database()
    url = pg_support.url_of(name)
    try:
        errors: list[BaseException] = []

        def run():
            try:
                with psycopg.connect(url) as conn:
                    assert migrate(conn) == CURRENT_VERSION
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        with psycopg.connect(url) as conn:
            assert migrate(conn) == CURRENT_VERSION  # again: nothing to do
            rows = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        assert [r[0] for r in rows] == [m[0] for m in MIGRATIONS]
    finally:
        pg_support.drop_database(name)


async def test_pg_media_store_is_shared(pg_stores):
    a, b = await pg_stores("gw-a"), await pg_stores("gw-b")
    digest = await a.media().put(b"\x00\xffpicture")
    assert await a.media().put(b"\x00\xffpicture") == digest
    assert await b.media().get(digest) == b"\x00\xffpicture"
    assert b.media().exists(digest) and not b.media().exists("0" * 64)
    with pytest.raises(NotFoundError):
        await b.media().get("0" * 64)
    with pytest.raises(NotFoundError):
        await b.media().get("../etc/passwd")


async def test_pg_report_racing_the_submit_rsp_is_applied(pg_stores, pg_url):
    """A report committed while the SubmitRsp is being recorded on another instance is
    neither missed by the batch's commit nor left unmatched."""
    from gateway.store.postgresql import reports

    a = await pg_stores("gw-a")
    await a.create_message(new_message("m1"))
    (b1,) = await a.claim_due("r1", 200.0, 1)
    with psycopg.connect(pg_url) as other:  # a peer's report transaction, not yet committed
        assert reports.store_report(other, report("MMSC-1", at=250.0)).outcome == "unmatched"
        submit = asyncio.create_task(a.mark_submitted(b1.id, "MMSC-1", 260.0))
        await asyncio.sleep(0.5)  # lets mark_submitted run (and, with the lock, wait)
        other.commit()
        await asyncio.wait_for(submit, 10)
    assert (await a.get_message("m1")).status == "delivered"
    assert await a.report_counts() == {"applied": 1}
