"""RecentMessages: bounded by count and by the records' estimated size; a full cache keeps
the records still to send (workers send the oldest first)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway.outbound.content import RecentMessages
from gateway.store import MessageRecord
from gateway.store.records import RecipientRecord
from tests.gateway.support import make_config


def record(mid: str, text: str = "hi", recipients: int = 1) -> MessageRecord:
    return MessageRecord(
        id=mid, api_key="k", route="r", status="queued", sender=None, subject=None,
        text=text, parts=(), priority=None, delivery_report=True, read_report=False,
        callback_url=None, client_ref=None, idempotency_key=None, request_hash=None,
        fallback=None, original_bytes=None, adapted_bytes=None, attempts=0, last_error=None,
        created_at=1.0, updated_at=1.0, send_at=1.0, expires_at=2.0,
        recipients=tuple(
            RecipientRecord(address=f"+1202555{i:04d}", status="queued", error=None, updated_at=1.0)
            for i in range(recipients)
        ),
    )  # fmt: skip


def test_a_full_cache_keeps_the_records_still_to_send() -> None:
    recent = RecentMessages(max_entries=3)
    for i in range(5):
        recent.add(record(f"m{i}"))
    assert len(recent) == 3
    # Sent in the order accepted: the first three are hits, the rest are read back.
    assert [recent.get(f"m{i}") is not None for i in range(5)] == [True] * 3 + [False] * 2


def test_a_backlog_larger_than_the_cache_still_hits_as_far_as_it_holds() -> None:
    """Accept 10, send oldest first while accepting more: every record the cache could
    hold is a hit (an LRU evicting the oldest made all of them miss)."""
    recent = RecentMessages(max_entries=4)
    hits = 0
    accepted = 0
    for sent in range(20):
        while accepted < sent + 10:  # the backlog stays at 10, more than the cache holds
            recent.add(record(f"m{accepted}"))
            accepted += 1
        hits += recent.get(f"m{sent}") is not None
    assert len(recent) == 4
    assert hits >= 4


def test_taken_records_make_room_first() -> None:
    recent = RecentMessages(max_entries=2)
    recent.add(record("a"))
    recent.add(record("b"))
    assert recent.get("a") is not None  # a worker took it
    recent.add(record("c"))  # room made by forgetting "a", not "b"
    assert recent.get("b") is not None and recent.get("c") is not None
    assert recent.get("a") is None


def test_records_nobody_took_age_out() -> None:
    now = [0.0]
    recent = RecentMessages(max_entries=2, max_age=60.0, clock=lambda: now[0])
    recent.add(record("a"))  # its SubmitReq went to another instance: never taken
    recent.add(record("b"))
    now[0] = 30.0
    recent.add(record("c"))
    assert recent.get("c") is None  # "a" is not old enough to give its place
    now[0] = 61.0
    recent.add(record("d"))
    assert recent.get("a") is None
    assert recent.get("b") is not None and recent.get("d") is not None


def test_size_bound_evicts_until_it_fits() -> None:
    recent = RecentMessages(max_entries=100, max_bytes=12_000, max_record_bytes=50_000)
    recent.add(record("small"))
    recent.add(record("big", text="x" * 8_000))
    assert recent.get("small") is not None and recent.get("big") is not None
    recent.add(record("bigger", text="y" * 8_500))
    assert recent.get("small") is None and recent.get("big") is None
    assert recent.get("bigger") is not None
    # A record bigger than the whole budget is not kept at all.
    recent.add(record("huge", text="z" * 20_000))
    assert len(recent) == 0


def test_discard_and_re_add_keep_the_size_right() -> None:
    recent = RecentMessages(max_entries=10, max_bytes=8_000, max_record_bytes=50_000)
    recent.add(record("a", text="x" * 2_000))
    recent.add(record("a", text="x" * 2_000))  # replaced, not counted twice
    recent.add(record("b", text="y" * 2_000))
    assert recent.get("a") is not None and recent.get("b") is not None
    recent.discard("a")
    recent.add(record("c", text="z" * 2_000))
    assert recent.get("b") is not None and recent.get("c") is not None
    assert len(recent) == 2


def test_big_records_are_not_kept() -> None:
    recent = RecentMessages()
    recent.add(record("short"))
    recent.add(record("long", text="x" * 4_900))  # read back from the store instead
    assert recent.get("short") is not None
    assert recent.get("long") is None
    recent.add(record("short", text="y" * 4_900))  # a replacement that grew: forgotten
    assert recent.get("short") is None
    assert len(recent) == 0


async def test_workers_send_from_the_records_the_api_just_committed(
    tmp_path: Path, mock_mmsc: Any, run_gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route workers share the gateway's cache (an empty cache once looked falsy and
    a worker got one of its own, of size 0): a fresh message is not read back."""
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    store = gw.gateway.store
    reads: list[str] = []
    read = store.get_message

    async def counted(message_id: str) -> Any:
        reads.append(message_id)
        return await read(message_id)

    monkeypatch.setattr(store, "get_message", counted)
    for n in range(3):
        status, body = await gw.submit({"to": f"+1202555010{n}", "text": f"hello {n}"})
        assert status == 202, body
    for _ in range(500):
        stats = await mock.stats()
        if stats["requests"].get("SubmitReq", {}).get("1000", 0) >= 3:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError(f"the mock did not get 3 SubmitReqs: {stats}")
    assert reads == []
