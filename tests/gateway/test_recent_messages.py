"""RecentMessages: bounded by count and by the records' estimated size (LRU)."""

from __future__ import annotations

from gateway.outbound.content import RecentMessages
from gateway.store import MessageRecord
from gateway.store.records import RecipientRecord


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


def test_count_bound_evicts_the_oldest() -> None:
    recent = RecentMessages(max_entries=3)
    for i in range(5):
        recent.add(record(f"m{i}"))
    assert len(recent) == 3
    assert recent.get("m0") is None
    assert recent.get("m1") is None
    assert recent.get("m4") is not None


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
