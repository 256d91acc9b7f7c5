"""The store contract of several gateways on one store, on both backends where it applies
(``open_store`` opens another "gateway" on the same database), and what only the shared
PostgreSQL backend has: leases, membership, the shared token bucket, media in the
database, migrations started at once. The single-store contract is ``test_store.py``,
``test_store_cancel.py``, ``test_sms_store.py``, ``test_retention.py`` and
``test_pools_units.py``, all parametrised over both backends.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import psycopg
import pytest

from gateway.errors import NotFoundError
from gateway.store import SqliteStore
from gateway.store.postgresql import PostgresStore
from gateway.store.postgresql.migrations import CURRENT_VERSION, MIGRATIONS, migrate
from gateway.store.records import ReportRow
from tests.gateway import pg_support
from tests.gateway.test_store import new_message

HOOK = "http://127.0.0.1:9/hook"
NUMBERS = [f"+120255501{i:02d}" for i in range(20)]


@pytest.fixture
async def pg_stores(pg_url):
    """``await pg_stores(instance, lease)``: PostgreSQL stores on one emptied database."""
    pg_support.truncate_all(pg_url)
    opened = []

    async def open_one(instance="gw-a", lease=30.0):
        store = PostgresStore(pg_url, pool_size=4, instance_id=instance, lease_seconds=lease)
        await store.open()
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


# -- both backends -------------------------------------------------------------------------
async def test_max_in_flight_holds_across_two_stores(open_store):
    a, b = await open_store("gw-a"), await open_store("gw-b")
    await a.create_message(new_message("m1", NUMBERS[:6]))
    got_a = await a.claim_due("r1", 200.0, 3, max_in_flight=4)
    got_b = await b.claim_due("r1", 200.0, 3, max_in_flight=4)
    assert (len(got_a), len(got_b)) == (3, 1)
    assert await b.claim_due("r1", 200.0, 3, max_in_flight=4) == []
    await a.mark_submitted(got_a[0].id, "mm7-1", 201.0)
    assert len(await b.claim_due("r1", 202.0, 3, max_in_flight=4)) == 1
    assert len({x.id for x in got_a + got_b}) == 4


async def test_concurrent_claims_never_pass_the_cap_nor_share_a_batch(open_store):
    a, b = await open_store("gw-a"), await open_store("gw-b")
    await a.create_message(new_message("m1", NUMBERS))
    results = await asyncio.gather(
        *(s.claim_due("r1", 200.0, 3, max_in_flight=5) for s in [a, b] * 5)
    )
    claimed = [batch.id for result in results for batch in result]
    assert len(claimed) == len(set(claimed)) == 5
    assert (await a.get_message("m1")).attempts == 5


async def test_concurrent_duplicates_make_one_message(open_store):
    a, b = await open_store("gw-a"), await open_store("gw-b")
    results = await asyncio.gather(
        *(s.create_message(new_message(f"m{i}", key="same")) for i, s in enumerate([a, b] * 4))
    )
    assert len({record.id for record, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_membership(open_store):
    a, b = await open_store("gw-a"), await open_store("gw-b")
    await a.heartbeat("gw-a", 1000.0)
    await b.heartbeat("gw-b", 1000.0)
    if not a.shared:  # the embedded store is a cluster of one, with local rates
        assert await a.live_instances(990.0) == 1
        assert await a.take_send_token("r1", 5.0, 1.0) == 0.0
        return
    assert await a.live_instances(990.0) == 2
    await a.heartbeat("gw-a", 1020.0)
    assert await b.live_instances(1010.0) == 1
    # A stopping instance leaves at once instead of being missed after its heartbeats.
    await b.heartbeat("gw-b", 1020.0)
    assert await a.live_instances(1010.0) == 2
    await b.leave("gw-b")
    assert await a.live_instances(1010.0) == 1


def report(mm7_id: str, recipient: str, at: float = 300.0) -> ReportRow:
    return ReportRow(
        kind="delivery", mmsc="r1", dedupe_key=f"{mm7_id}-{recipient}", mm7_message_id=mm7_id,
        recipient=recipient, sender="12345", mm_status="Retrieved", mm_status_extension=None,
        status_text=None, mapped_state="delivered", report_at=at, received_at=at,
        transaction_id=None,
    )  # fmt: skip


async def test_concurrent_changes_to_one_message_keep_its_status(open_store):
    """Outcomes and reports for different recipients of one message, from two stores at
    once: the message's status is computed from all of them (no lost update)."""
    a, b = await open_store("gw-a"), await open_store("gw-b")
    await a.create_message(new_message("m1", NUMBERS[:6]))
    batches = await a.claim_due("r1", 200.0, 10)
    stores = [a, b] * 3
    await asyncio.gather(
        *(
            s.mark_submitted(x.id, f"mm7-{i}", 201.0)
            for i, (s, x) in enumerate(zip(stores, batches, strict=True))
        )
    )
    assert (await a.get_message("m1")).status == "submitted"
    await asyncio.gather(
        *(s.store_report(report(f"mm7-{i}", NUMBERS[i])) for i, s in enumerate(stores))
    )
    record = await b.get_message("m1")
    assert {r.status for r in record.recipients} == {"delivered"}
    assert record.status == "delivered"


async def test_a_report_racing_its_submit_response_is_applied(open_store):
    a, b = await open_store("gw-a"), await open_store("gw-b")
    await a.create_message(new_message("m1", NUMBERS[:8]))
    batches = await a.claim_due("r1", 200.0, 10)
    await asyncio.gather(
        *(a.mark_submitted(x.id, f"mm7-{i}", 201.0) for i, x in enumerate(batches)),
        *(b.store_report(report(f"mm7-{i}", NUMBERS[i])) for i in range(8)),
    )
    record = await a.get_message("m1")
    assert [r.status for r in record.recipients] == ["delivered"] * 8


# -- the shared store ----------------------------------------------------------------------
async def test_the_shared_bucket_holds_the_rate_across_instances(pg_stores):
    a, b = await pg_stores("gw-a"), await pg_stores("gw-b")
    rate, burst = 40.0, 2.0
    granted = 0
    started = time.monotonic()

    async def draw(store):
        nonlocal granted
        while time.monotonic() - started < 0.5:
            wait = await store.take_send_token("r1", rate, burst)
            if wait == 0:
                granted += 1
            else:
                assert 0 < wait <= 1 / rate + 1e-9
                await asyncio.sleep(wait)

    await asyncio.gather(draw(a), draw(b), draw(a), draw(b))
    elapsed = time.monotonic() - started
    # Never more than the bucket allows (the bound cannot fail on a slow machine).
    assert 1 <= granted <= burst + rate * elapsed + 1
    assert await a.take_send_token("r1", 0.0, 1.0) == 0.0  # unlimited


async def test_a_live_peers_claim_is_kept_an_expired_one_is_sent_again(pg_stores):
    a, b = await pg_stores("gw-a"), await pg_stores("gw-b")
    await a.create_message(new_message("m1"))
    [batch] = await a.claim_due("r1", 200.0, 5)  # leased until 230
    assert await b.requeue_in_flight(210.0) == 0
    assert await b.claim_due("r1", 210.0, 5) == []
    await a.heartbeat("gw-a", 225.0)  # renewed until 255
    assert await b.claim_due("r1", 240.0, 5) == []
    # gw-a stops beating: once its lease runs out the batch is claimed again, same
    # TransactionID, its first attempt still counted.
    [again] = await b.claim_due("r1", 256.0, 5)
    assert (again.id, again.transaction_id, again.attempts) == (batch.id, "m1-1", 2)


async def test_a_restarted_instance_takes_back_its_own_claims_at_start(pg_stores):
    a = await pg_stores("gw-a")
    await a.create_message(new_message("m1"))
    await a.claim_due("r1", 200.0, 5)
    assert await (await pg_stores("gw-b")).requeue_in_flight(201.0) == 0
    assert await (await pg_stores("gw-a")).requeue_in_flight(201.0) == 1


async def test_a_dead_instances_batch_with_a_cancel_request_ends_canceled(pg_stores):
    a, b = await pg_stores("gw-a"), await pg_stores("gw-b")
    await a.create_message(new_message("m1"))
    await a.claim_due("r1", 200.0, 5)
    plan = await b.cancel_message("m1", 205.0)
    assert plan.in_flight == 1
    assert await b.claim_due("r1", 300.0, 5) == []  # the lease ran out: canceled, not sent
    assert (await b.get_message("m1")).status == "canceled"


async def test_webhook_events_are_leased_and_keep_their_stream_order(pg_stores):
    a, b = await pg_stores("gw-a"), await pg_stores("gw-b")
    await a.sync_webhook_targets({"k": HOOK})
    await a.create_message(new_message("m1", NUMBERS[:2]))
    x, y = await a.claim_due("r1", 200.0, 5)
    await a.mark_submitted(x.id, "mm7-1", 201.0)
    await a.mark_submitted(y.id, "mm7-2", 202.0)
    [first] = await a.due_events(210.0, 10, ())
    assert await b.due_events(210.0, 10, ()) == []  # head leased by gw-a; the next waits
    # gw-a held it back (a busy destination) and asks again: its own claim comes back.
    assert await a.due_events(210.5, 10, ()) == [first]
    assert await b.next_event_at() == 240.5  # the lease gw-a took last
    await a.finish_event(first.id, "delivered", None, 211.0)
    [second] = await b.due_events(212.0, 10, ())
    assert second.id > first.id and second.stream == "m1"
    assert await a.due_events(213.0, 10, ()) == []
    [again] = await a.due_events(243.0, 10, ())  # gw-b's lease ran out
    assert again.id == second.id


async def test_media_in_postgresql_is_served_by_every_instance(pg_stores):
    a, b = await pg_stores("gw-a"), await pg_stores("gw-b")
    digest = await a.media().put(b"hello")
    other = b.media()
    assert await other.get(digest) == b"hello"
    assert other.exists(digest)
    assert not other.exists("0" * 64)
    with pytest.raises(NotFoundError):
        await other.get("0" * 64)
    assert await asyncio.to_thread(other.old_files, time.time() - 3600, 10) == []
    assert await asyncio.to_thread(other.old_files, time.time() + 10, 10) == [digest]
    assert await asyncio.to_thread(other.delete, digest, time.time() + 10)
    with pytest.raises(NotFoundError):
        await a.media().get(digest)


def test_migrations_are_safe_when_instances_start_at_once(pg_url):
    name = pg_support.create_database()
    url = pg_support.url_of(name)
    try:
        versions: list[int] = []

        def start() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                versions.append(migrate(conn))

        threads = [threading.Thread(target=start) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert versions == [CURRENT_VERSION] * 4
        with psycopg.connect(url) as conn:
            applied = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        assert sorted(applied) == [v for v, _, _ in MIGRATIONS]
    finally:
        pg_support.drop_database(name)


async def test_both_backends_have_the_same_schema(tmp_path, pg_stores, pg_url):
    await pg_stores()
    lite = SqliteStore(tmp_path / "db.sqlite3")
    await lite.open()
    await lite.close()
    conn = sqlite3.connect(tmp_path / "db.sqlite3")
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    sqlite_columns = {
        (t, str(c[1])) for t in tables if t != "sqlite_sequence"
        for c in conn.execute(f"PRAGMA table_info({t})")
    }  # fmt: skip
    conn.close()
    with psycopg.connect(pg_url) as pg:
        pg_columns = {
            (str(t), str(c))
            for t, c in pg.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name <> 'media'"
            )
        }
    assert pg_columns == sqlite_columns
