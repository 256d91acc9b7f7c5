"""The store contract of bulk sends (campaigns), on SQLite and PostgreSQL (``open_store``):
chunks held until the campaign opens, paging, cancel, progress and its events, discarding
unanswered campaigns (on a shared store only a dead or old instance's), retention."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from gateway.store import NewMessage, PartRef
from gateway.store.campaign_records import InvalidLine, NewCampaign
from gateway.store.postgresql import PostgresStore
from gateway.store.records import PoolRules
from tests.gateway import pg_support

HOOK = "http://127.0.0.1:9/hook"
NOW = 1_000_000.0


def numbers(count: int, start: int = 0) -> tuple[str, ...]:
    return tuple(f"+1212555{n:04d}" for n in range(start, start + count))


def campaign(cid: str, *, key: str | None = None, at: float = NOW) -> NewCampaign:
    return NewCampaign(
        id=cid, api_key="k", events="batch", callback_url=HOOK, client_ref="ref",
        idempotency_key=key, created_at=at,
    )  # fmt: skip


def chunk(to: tuple[str, ...], *, per_submit: int = 1, at: float = NOW, **extra) -> NewMessage:
    return NewMessage(
        id="template", api_key="k", route="r1", recipients=to, recipient_routes=("r1",) * len(to),
        sender="12345", subject=None, text="sale",
        parts=(PartRef(content_type="image/jpeg", sha256="a" * 64, size=3, content_id="m0"),),
        batch_sizes={"r1": per_submit}, created_at=at, send_at=at, expires_at=at + 3600,
        **extra,
    )  # fmt: skip


async def opened(store, cid: str, to: tuple[str, ...], **extra):
    await store.create_campaign(campaign(cid))
    result = await store.add_campaign_chunk(cid, chunk(to, **extra))
    record = await store.open_campaign(cid, [InvalidLine(3, "x", "bad")], 1, NOW + 1)
    return result, record


async def batch_events(store, cid: str) -> list[str]:
    rows = await store.read(
        lambda conn: conn.execute(
            "SELECT body FROM outbox WHERE stream = ? AND type = 'batch.status' ORDER BY id",
            (cid,),
        ).fetchall()
    )
    import json

    return [json.loads(r[0])["data"]["status"] for r in rows]


async def count(store, sql: str, *params) -> int:
    return int(await store.read(lambda conn: conn.execute(sql, params).fetchone()[0]))


async def test_chunks_are_held_until_the_campaign_opens(open_store):
    store = await open_store()
    cid, created = await store.create_campaign(campaign("bat_1"))
    assert (cid, created) == ("bat_1", True)
    first = await store.add_campaign_chunk(cid, chunk(numbers(5), per_submit=2))
    second = await store.add_campaign_chunk(cid, chunk(numbers(3, start=5), per_submit=2))
    assert (first.accepted, first.submits) == (5, {"r1": 3})
    assert (second.accepted, second.submits) == (3, {"r1": 2})
    # Held: no worker may claim a SubmitReq of a campaign that was not answered yet.
    assert await store.claim_due("r1", NOW + 10, 100) == []
    assert (await store.get_campaign(cid)).status == "preparing"
    record = await store.open_campaign(cid, [InvalidLine(3, "x", "bad")], 1, NOW + 1)
    assert record.status == "queued"
    assert record.recipients == 8
    assert record.counts["queued"] == 8
    assert record.invalid == (InvalidLine(3, "x", "bad"),)
    assert record.invalid_count == 1
    claimed = await store.claim_due("r1", NOW + 10, 100)
    assert sorted(len(b.recipients) for b in claimed) == [1, 1, 2, 2, 2]
    assert sorted(a for b in claimed for a in b.recipients) == sorted(numbers(8))


async def test_idempotency_key_names_one_campaign_across_stores(open_store):
    a, b = await open_store("gw-a"), await open_store("gw-b")
    results = await asyncio.gather(
        *(s.create_campaign(replace(campaign(f"bat_{i}", key="same"))) for i, s in
          enumerate([a, b] * 4))
    )  # fmt: skip
    assert len({cid for cid, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_recipients_are_paged_in_input_order_and_filtered(open_store):
    store = await open_store()
    to = numbers(7)
    await opened(store, "bat_p", to, per_submit=3)
    page = await store.campaign_recipients("bat_p", None, None, 4)
    rest = await store.campaign_recipients("bat_p", None, (page[-1].seq, page[-1].idx), 10)
    assert [r.to for r in page + rest] == list(to)
    (batch, *_) = await store.claim_due("r1", NOW + 10, 1)
    await store.mark_submitted(batch.id, "mm7-1", NOW + 11)
    submitted = await store.campaign_recipients("bat_p", "submitted", None, 10)
    assert [r.to for r in submitted] == list(to[:3])
    assert {r.mm7_message_id for r in submitted} == {"mm7-1"}


async def test_refused_recipients_are_stored_rejected(open_store):
    store = await open_store()
    to = numbers(4)
    result, record = await opened(
        store, "bat_r", to, refusals=((1, "recipient_opted_out", "sent STOP"),)
    )
    assert result.accepted == 3
    assert result.refused == [(1, "recipient_opted_out", "sent STOP")]
    assert record.counts["rejected"] == 1
    rejected = await store.campaign_recipients("bat_r", "rejected", None, 10)
    assert [(r.to, r.error) for r in rejected] == [(to[1], "recipient_opted_out: sent STOP")]


async def test_pool_cap_holds_for_chunks_committed_at_once(open_store):
    """Two campaigns committing chunks to the same numbers at the same moment, from two
    instances: a daily cap of one lets each number through once."""
    a, b = await open_store("gw-a"), await open_store("gw-b")
    to = numbers(30)
    rules = PoolRules(pool="promo", consent="opt_out", max_per_day=1)
    for s, cid in ((a, "bat_a"), (b, "bat_b")):
        await s.create_campaign(campaign(cid))
    results = await asyncio.gather(
        *(
            s.add_campaign_chunk(cid, chunk(part, pool="promo", pool_rules=rules))
            for s, cid in ((a, "bat_a"), (b, "bat_b"))
            for part in (to[:15], to[15:])
        )
    )
    assert sum(r.accepted for r in results) == 30
    assert sum(len(r.refused) for r in results) == 30
    assert {code for r in results for _, code, _ in r.refused} == {"frequency_capped"}


@pytest.mark.parametrize("events", ["batch", "per_recipient"])
async def test_cancel_pages_cancel_what_is_queued_and_leave_what_was_sent(open_store, events):
    store = await open_store()
    await store.sync_webhook_targets({"k": HOOK})
    await store.create_campaign(replace(campaign("bat_c"), events=events))
    await store.add_campaign_chunk("bat_c", chunk(numbers(7)))
    await store.open_campaign("bat_c", [], 0, NOW + 1)
    claimed = await store.claim_due("r1", NOW + 10, 2)
    await store.mark_submitted(claimed[0].id, "mm7-1", NOW + 11)
    first = await store.cancel_campaign_page("bat_c", 0, 3, NOW + 12)
    assert first.next_after is not None
    second = await store.cancel_campaign_page("bat_c", first.next_after, 3, NOW + 12)
    third = await store.cancel_campaign_page("bat_c", second.next_after, 3, NOW + 12)
    assert third.next_after is None
    assert first.canceled + second.canceled + third.canceled == 5
    record = await store.get_campaign("bat_c")
    assert record.status == "canceled"
    assert (record.counts["canceled"], record.counts["submitted"]) == (5, 1)
    # The batch in flight is left to finish (its SubmitReq is on the wire).
    assert await count(store, "SELECT COUNT(*) FROM batches WHERE state = 'in_flight'") == 1
    statuses = await store.read(
        lambda conn: conn.execute(
            "SELECT m.status, b.state, b.claimed_by, m.updated_at FROM messages m "
            "JOIN batches b ON b.message_id = m.id WHERE b.state = 'canceled'"
        ).fetchall()
    )
    assert sorted(statuses) == [("canceled", "canceled", None, NOW + 12)] * 5
    assert await batch_events(store, "bat_c") == ["queued", "canceled"]
    per_recipient = await count(
        store, "SELECT COUNT(*) FROM outbox WHERE type = 'message.status' AND body LIKE ?",
        "%canceled%",
    )  # fmt: skip
    assert per_recipient == (5 if events == "per_recipient" else 0)
    # Cancelling again changes nothing and says nothing.
    again = await store.cancel_campaign_page("bat_c", 0, 10, NOW + 13)
    assert again.canceled == 0
    assert await batch_events(store, "bat_c") == ["queued", "canceled"]


async def test_cancel_never_cancels_a_batch_a_peer_just_claimed(open_store):
    """Cancel pages and claims on two instances at once: every SubmitReq ends either
    claimed (in flight) or canceled, never both."""
    a, b = await open_store("gw-a"), await open_store("gw-b")
    await opened(a, "bat_x", numbers(40))

    async def cancel_all():
        after = 0
        while after is not None:
            page = await a.cancel_campaign_page("bat_x", after, 5, NOW + 12)
            after = page.next_after

    results = await asyncio.gather(
        cancel_all(), *(b.claim_due("r1", NOW + 10, 4) for _ in range(5))
    )
    claimed = {batch.id for result in results[1:] for batch in result}
    states = dict(
        await a.read(lambda conn: conn.execute("SELECT id, state FROM batches").fetchall())
    )
    assert {states[i] for i in claimed} <= {"in_flight"}
    assert {s for i, s in states.items() if i not in claimed} == {"canceled"}


async def test_progress_moves_forward_once_per_state_with_one_event_each(open_store):
    a, b = await open_store("gw-a"), await open_store("gw-b")
    await a.sync_webhook_targets({"k": HOOK})
    await opened(a, "bat_w", numbers(2))
    assert await a.campaign_progress(NOW + 2) == []
    (first, second) = await a.claim_due("r1", NOW + 10, 2)
    await a.mark_submitted(first.id, "mm7-1", NOW + 11)
    # Both instances watch: each change is made, and announced, once.
    changed = await asyncio.gather(a.campaign_progress(NOW + 12), b.campaign_progress(NOW + 12))
    assert sorted(c for result in changed for c in result) == [("bat_w", "sending")]
    await a.mark_submitted(second.id, "mm7-2", NOW + 13)
    changed = await asyncio.gather(a.campaign_progress(NOW + 14), b.campaign_progress(NOW + 14))
    assert sorted(c for result in changed for c in result) == [("bat_w", "sent")]
    for batch in (first, second):
        await a.mark_failed(batch.id, "failed", "gone", NOW + 15)
    changed = await asyncio.gather(a.campaign_progress(NOW + 16), b.campaign_progress(NOW + 16))
    assert sorted(c for result in changed for c in result) == [("bat_w", "completed")]
    assert await batch_events(a, "bat_w") == ["queued", "sending", "sent", "completed"]


async def test_discard_removes_every_row_of_the_campaign(open_store):
    store = await open_store()
    await store.create_campaign(campaign("bat_d"))
    await store.add_campaign_chunk(
        "bat_d", chunk(numbers(4), refusals=((0, "recipient_opted_out", "STOP"),))
    )
    await store.discard_campaign("bat_d")
    left = await count(
        store,
        "SELECT (SELECT COUNT(*) FROM campaigns) + (SELECT COUNT(*) FROM messages) "
        "+ (SELECT COUNT(*) FROM batches) + (SELECT COUNT(*) FROM recipients)",
    )
    assert left == 0


async def test_a_discarded_campaign_gives_back_the_pool_cap_it_counted(open_store):
    store = await open_store()
    rules = PoolRules(pool="promo", consent="opt_out", max_per_day=1)
    to = numbers(3)
    await store.create_campaign(campaign("bat_failed"))
    first = await store.add_campaign_chunk("bat_failed", chunk(to, pool="promo", pool_rules=rules))
    assert first.accepted == 3
    await store.discard_campaign("bat_failed")
    # Nothing of the failed request was sent: the same numbers are not capped.
    _, record = await opened(store, "bat_retry", to, pool="promo", pool_rules=rules)
    assert record.counts["queued"] == 3
    assert await count(store, "SELECT COUNT(*) FROM pool_sends") == 3


async def test_unanswered_campaigns_are_discarded_at_start(open_store):
    store = await open_store("gw-a")
    await store.create_campaign(campaign("bat_old", at=NOW))
    await store.add_campaign_chunk("bat_old", chunk(numbers(3)))
    await opened(store, "bat_open", numbers(2, start=3))
    # Started again (same instance id: its previous run's work is its own).
    again = await open_store("gw-a")
    assert await again.discard_preparing_campaigns(NOW + 5) == 1
    assert await again.get_campaign("bat_old") is None
    assert (await again.get_campaign("bat_open")).status == "queued"
    assert await count(again, "SELECT COUNT(*) FROM batches WHERE state = 'held'") == 0


@pytest.fixture
async def pg_stores(pg_url):
    """``await pg_stores(instance)``: PostgreSQL stores on one emptied database (what
    only a shared store has: one SQLite file belongs to one process)."""
    pg_support.truncate_all(pg_url)
    opened = []

    async def open_one(instance="gw-a"):
        store = PostgresStore(pg_url, pool_size=2, instance_id=instance, lease_seconds=30.0)
        await store.open()
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


async def test_a_live_peers_preparing_campaign_is_left_alone(pg_stores):
    """On a shared store a starting instance must not delete the batch a live peer is
    committing; a dead peer's (no heartbeat within the lease) is removed, and any
    campaign left preparing for far too long. At run time its own are live too."""
    live, dead = await pg_stores("gw-live"), await pg_stores("gw-dead")
    await live.heartbeat("gw-live", NOW)
    await dead.heartbeat("gw-dead", NOW - 100)
    for s, cid in ((live, "bat_live"), (dead, "bat_dead")):
        await s.create_campaign(campaign(cid, at=NOW - 1))
        await s.add_campaign_chunk(cid, chunk(numbers(2)))
    await live.create_campaign(campaign("bat_stale", at=NOW - 7200))
    # An instance whose heartbeat has not been written yet, at run time: its own
    # campaign is a request it is committing; the dead peer's and the stale one go.
    quiet = await pg_stores("gw-quiet")
    await quiet.create_campaign(campaign("bat_quiet", at=NOW - 1))
    assert await quiet.discard_preparing_campaigns(NOW, at_start=False) == 2
    assert (await quiet.get_campaign("bat_quiet")).status == "preparing"
    # Another instance starting: gw-quiet never beat, so its campaign is an orphan.
    starting = await pg_stores("gw-new")
    assert await starting.discard_preparing_campaigns(NOW) == 1
    assert await starting.get_campaign("bat_quiet") is None
    assert (await starting.get_campaign("bat_live")).status == "preparing"
    assert await starting.get_campaign("bat_dead") is None
    assert await starting.get_campaign("bat_stale") is None


async def test_retention_purges_finished_campaigns_with_their_rows(open_store):
    store = await open_store()
    await opened(store, "bat_done", numbers(3))
    await opened(store, "bat_busy", numbers(2, start=3))
    for batch in await store.claim_due("r1", NOW + 10, 10):
        message = await store.get_message(batch.message_id)
        if batch.recipients[0] in numbers(3):
            await store.mark_failed(batch.id, "failed", "gone", NOW + 11)
        else:
            assert message is not None
    await store.campaign_progress(NOW + 12)
    assert (await store.get_campaign("bat_done")).status == "completed"
    assert (await store.purge_expired(NOW + 100, 2))["campaigns"] == 0  # owed its events
    await store.write(lambda conn: conn.execute("UPDATE outbox SET state = 'delivered'"))
    # Before the cutoff nothing goes; after it the finished campaign goes whole (in
    # chunks of ``limit`` messages), the one still sending stays whole.
    assert (await store.purge_expired(NOW, 2))["campaigns"] == 0
    purged = 0
    for _ in range(5):
        purged += (await store.purge_expired(NOW + 100, 2))["campaigns"]
    assert await store.get_campaign("bat_done") is None
    assert (await store.get_campaign("bat_busy")).recipients == 2
    assert purged == 4  # three messages, then the campaign row
    left = await count(
        store,
        "SELECT COUNT(*) FROM messages m JOIN recipients r ON r.message_id = m.id "
        "WHERE m.campaign_id = 'bat_done'",
    )
    assert left == 0
    assert await count(store, "SELECT COUNT(*) FROM messages WHERE campaign_id = 'bat_busy'") == 2


async def test_the_watcher_removes_a_dead_peers_unanswered_campaign(pg_stores):
    """A peer died while committing a batch and never comes back: a live instance's
    campaign watcher removes it (once a minute), so its SubmitReqs are not held forever."""
    from gateway.outbound.campaigns import CampaignWatcher

    live, dead = await pg_stores("gw-live"), await pg_stores("gw-dead")
    await dead.heartbeat("gw-dead", NOW - 100)
    await dead.create_campaign(campaign("bat_orphan", at=NOW - 90))
    await dead.add_campaign_chunk("bat_orphan", chunk(numbers(2)))
    clock = [NOW]
    watcher = CampaignWatcher(live, lambda: clock[0], lambda: None, orphan_check_seconds=60)
    await watcher.check()
    assert await live.get_campaign("bat_orphan") is None
    # Not before the next minute: a campaign left meanwhile waits for it.
    await dead.create_campaign(campaign("bat_orphan2", at=NOW - 90))
    clock[0] = NOW + 30
    await watcher.check()
    assert await live.get_campaign("bat_orphan2") is not None
    clock[0] = NOW + 61
    await watcher.check()
    assert await live.get_campaign("bat_orphan2") is None
