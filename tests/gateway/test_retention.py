"""Retention: final rows and unreferenced media older than the cutoff go, nothing else."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry

from gateway.media.store import MediaStore
from gateway.ops.metrics import Metrics
from gateway.ops.retention import Retention, RetentionSettings
from gateway.store.records import InboundPart, InboundRow
from tests.gateway.test_store import new_message

DAY = 86_400.0
NOW = 100 * DAY


@pytest.fixture
async def store(any_store):
    """Runs on both backends (the store contract)."""
    return any_store


async def final_message(store, mid, at, *, recipients=("+12025550101",)):
    """A message accepted and failed at ``at`` (a final state)."""
    new = replace(new_message(mid, recipients), created_at=at, send_at=at, expires_at=at + DAY)
    await store.create_message(new)
    for batch in await store.claim_due("r1", at, 100):
        await store.mark_failed(batch.id, "failed", "refused", at)


def inbound_row(inbound_id: str, digest: str, at: float) -> InboundRow:
    return InboundRow(
        id=inbound_id, mmsc="r1", dedupe_key=inbound_id, api_key=None, sender="+12025550111",
        recipient="12345", recipients=("12345",), subject=None, text="hi", linked_id=None,
        transaction_id=None, optout=None, sent_at=None, received_at=at,
        parts=(InboundPart(content_type="image/png", sha256=digest, size=3, content_id=None,
                           content_location=None, charset=None, text=None),),
    )  # fmt: skip


async def test_final_old_messages_go_with_their_batches_and_reports(store):
    await final_message(store, "old", NOW - 40 * DAY)
    await final_message(store, "recent", NOW - 1 * DAY)
    queued = replace(new_message("queued"), created_at=NOW - 50 * DAY, send_at=NOW + DAY)
    await store.create_message(queued)  # old but not final: kept

    counts = await store.purge_expired(NOW - 30 * DAY, 100)

    assert counts["messages"] == 1
    assert await store.get_message("old") is None
    assert await store.get_message("recent") is not None
    assert await store.get_message("queued") is not None
    rows = await store.read(
        lambda c: c.execute("SELECT COUNT(*) FROM batches WHERE message_id = 'old'").fetchone()
    )
    assert rows[0] == 0
    assert await store.purge_expired(NOW - 30 * DAY, 100) == dict.fromkeys(
        ("messages", "campaigns", "inbound", "events", "reports"), 0
    )


async def test_purge_goes_in_chunks(store):
    for i in range(5):
        await final_message(store, f"m{i}", NOW - 40 * DAY + i)
    sizes = []
    while True:
        counts = await store.purge_expired(NOW - 30 * DAY, 2)
        if not counts["messages"]:
            break
        sizes.append(counts["messages"])
    assert sizes == [2, 2, 1]


async def test_a_message_owed_a_webhook_is_kept_until_the_event_is_done(store):
    await store.sync_webhook_targets({"k": "http://example.invalid/hook"})
    await final_message(store, "owed", NOW - 40 * DAY)
    events = await store.due_events(NOW, 10, ())
    assert events, "the final state emitted a message.status event"
    assert (await store.purge_expired(NOW - 30 * DAY, 100))["messages"] == 0
    for event in events:
        await store.finish_event(event.id, "dead", "gave up", NOW - 35 * DAY)
    counts = await store.purge_expired(NOW - 30 * DAY, 100)
    assert counts["messages"] == 1
    assert await store.dead_letters(None, 10) == []


async def test_inbound_and_unmatched_reports_go(store):
    await store.store_inbound(inbound_row("in_old", "b" * 64, NOW - 40 * DAY), None)
    await store.store_inbound(inbound_row("in_new", "c" * 64, NOW - DAY), None)
    counts = await store.purge_expired(NOW - 30 * DAY, 100)
    assert counts["inbound"] == 1
    assert await store.get_inbound("in_old") is None
    assert await store.get_inbound("in_new") is not None


def aged(media: MediaStore, data: bytes, at: float) -> str:
    digest = media.put_sync(data)
    os.utime(media.path_for(digest), (at, at))
    return digest


async def test_media_goes_only_when_old_and_unreferenced(store, tmp_path):
    media = MediaStore(tmp_path / "media")
    old = NOW - 40 * DAY
    orphan = aged(media, b"orphan", old)
    inbound_ref = aged(media, b"inbound", old)
    link_ref = aged(media, b"link", old)
    fresh = aged(media, b"fresh", NOW - 60)
    await store.store_inbound(inbound_row("in_kept", inbound_ref, NOW - DAY), None)
    # A queued message from before the cutoff whose media went by link (text only).
    linked = replace(
        new_message("linked"), text=f"see https://gw/v1/media/{link_ref}?exp=1&sig=x", parts=(),
        created_at=old, send_at=NOW + DAY, expires_at=NOW + 2 * DAY,
    )  # fmt: skip
    await store.create_message(linked)
    registry = CollectorRegistry()
    metrics = Metrics(registry, ["r1"])
    retention = Retention(
        store, media,
        RetentionSettings(retention_seconds=30 * DAY, media_url_ttl_seconds=7 * DAY,
                          touch_slack_seconds=3600.0, chunk=2),
        metrics, clock=lambda: NOW,
    )  # fmt: skip

    totals = await retention.run_once()

    assert totals["media"] == 1
    assert not media.exists(orphan)
    assert media.exists(inbound_ref)
    assert media.exists(link_ref)
    assert media.exists(fresh)
    assert registry.get_sample_value("mm7gw_retention_purged_total", {"kind": "media"}) == 1


async def test_storing_media_again_protects_it(store, tmp_path):
    media = MediaStore(tmp_path / "media")
    reused = aged(media, b"campaign image", NOW - 40 * DAY)
    assert await media.put(b"campaign image") == reused  # a new message uses it again
    assert media.path_for(reused).stat().st_mtime > NOW - 40 * DAY
    retention = Retention(
        store, media,
        RetentionSettings(retention_seconds=30 * DAY, media_url_ttl_seconds=7 * DAY,
                          touch_slack_seconds=3600.0),
        Metrics(CollectorRegistry(), ["r1"]), clock=lambda: NOW,
    )  # fmt: skip
    await retention.run_once()
    assert media.exists(reused)
    assert hashlib.sha256(media.get_sync(reused)).hexdigest() == reused


async def test_retention_zero_keeps_everything(tmp_path, store):
    retention = Retention(
        store, MediaStore(tmp_path / "media"),
        RetentionSettings(retention_seconds=0, media_url_ttl_seconds=1, touch_slack_seconds=1),
        Metrics(CollectorRegistry(), ["r1"]), clock=lambda: NOW,
    )  # fmt: skip
    retention.start()
    assert retention._task is None
