"""Sender pools without the network: config validation, sender choice, quiet-hours math,
and the store's consent, cap and stickiness operations on a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.config.model import GatewayConfig
from gateway.config.pools import quiet_window
from gateway.errors import ForbiddenError
from gateway.outbound.pools import PoolSenderSpec, PoolSpec, SenderPool, earliest_allowed
from gateway.store import NewMessage
from gateway.store.records import ConsentChange, PoolRules, RecipientsRefused

LONG = ("+14155550101", "+14155550102", "+14155550103")
NY, LA = "+12125550100", "+13105550100"


def config(pools: list[dict[str, Any]]) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {"mmsc": [{"name": "a", "url": "http://127.0.0.1:1/mm7"}], "pool": pools}
    )


def problems(pools: list[dict[str, Any]]) -> str:
    with pytest.raises(ValueError) as caught:  # pydantic's ValidationError is a ValueError
        config(pools)
    return str(caught.value)


# -- configuration ---------------------------------------------------------------------------
def test_pool_defaults_long_code_rate_and_alphanumeric_text_only():
    pool = config(
        [
            {
                "name": "promo",
                "sender": [
                    {"address": LONG[0], "kind": "long_code"},
                    {"address": "12345", "kind": "short_code", "tps": 50.0},
                    {"address": "ACME", "kind": "alphanumeric"},
                ],
            }
        ]
    ).pool[0]
    assert pool.consent == "opt_out"
    assert [s.rate for s in pool.sender] == [1.0, 50.0, None]
    assert [s.carries_mms for s in pool.sender] == [True, True, False]


@pytest.mark.parametrize(
    ("pool", "expected"),
    [
        ({"name": "p", "sender": []}, "at least 1 item"),
        ({"name": "p"}, "sender"),
        (
            {"name": "p", "sender": [{"address": "ACME", "kind": "alphanumeric", "mms": True}]},
            "alphanumeric sender cannot receive",
        ),
        ({"name": "p", "sender": [{"address": "12345", "kind": "long_code"}]}, "E.164"),
        ({"name": "p", "sender": [{"address": "+14155550101", "kind": "short_code"}]}, "3-8"),
        ({"name": "p", "sender": [{"address": "123456", "kind": "alphanumeric"}]}, "letter"),
        (
            {
                "name": "p",
                "quiet_hours": "25:00-08:00",
                "sender": [{"address": "1234", "kind": "short_code"}],
            },
            "HH:MM-HH:MM",
        ),
        (
            {"name": "P!", "sender": [{"address": "1234", "kind": "short_code"}]},
            "a-z, 0-9",
        ),
        (
            {
                "name": "p",
                "consent": "maybe",
                "sender": [{"address": "1234", "kind": "short_code"}],
            },
            "opt_in",
        ),
    ],
)
def test_bad_pools_are_refused_at_start(pool, expected):
    assert expected in problems([pool])


def test_an_address_belongs_to_one_pool_and_names_are_unique():
    sender = {"address": "12345", "kind": "short_code"}
    text = problems([{"name": "a", "sender": [sender]}, {"name": "a", "sender": [sender]}])
    assert "pool[1].name" in text and "duplicate" in text
    assert "pool[1].sender[0].address" in text and "already a sender of pool[0]" in text


# -- sender choice ---------------------------------------------------------------------------
def _pool(*senders: PoolSenderSpec) -> SenderPool:
    return SenderPool(PoolSpec(name="p", consent="opt_out", senders=senders))


def test_least_busy_spreads_over_long_codes_by_their_rate():
    pool = _pool(*(PoolSenderSpec(a, True, 1.0) for a in LONG))
    chosen = [pool.choose(mms=True, sticky=None, now=100.0) for _ in range(300)]
    assert {a: chosen.count(a) for a in LONG} == dict.fromkeys(LONG, 100)


def test_faster_sender_gets_proportionally_more():
    pool = _pool(PoolSenderSpec(LONG[0], True, 1.0), PoolSenderSpec("12345", True, 3.0))
    chosen = [pool.choose(mms=True, sticky=None, now=0.0) for _ in range(40)]
    assert chosen.count("12345") == 30


def test_mms_only_from_mms_senders_and_stickiness_when_capable():
    pool = _pool(PoolSenderSpec("ACME", False, None), PoolSenderSpec("12345", True, None))
    assert {pool.choose(mms=True, sticky=None, now=0.0) for _ in range(5)} == {"12345"}
    # Sticky: kept when it can carry the content, ignored when it cannot or left the pool.
    assert pool.choose(mms=False, sticky="ACME", now=0.0) == "ACME"
    assert pool.choose(mms=True, sticky="ACME", now=0.0) == "12345"
    assert pool.choose(mms=False, sticky="99999", now=0.0) in {"ACME", "12345"}
    with pytest.raises(LookupError):
        _pool(PoolSenderSpec("ACME", False, None)).choose(mms=True, sticky=None, now=0.0)


# -- quiet hours -----------------------------------------------------------------------------
def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_quiet_hours_in_the_recipients_local_time():
    quiet = quiet_window("21:00-08:00")
    assert quiet == (1260, 480)
    # 13:30 UTC in June: 09:30 in New York (allowed), 06:30 in Los Angeles (quiet).
    now = ts("2026-06-01T13:30:00+00:00")
    assert earliest_allowed(NY, quiet, now) == now
    assert earliest_allowed(LA, quiet, now) == ts("2026-06-01T08:00:00-07:00")
    # Just before the window starts, and inside it before midnight: the next morning.
    assert earliest_allowed(LA, quiet, ts("2026-06-01T20:59:00-07:00")) == ts(
        "2026-06-01T20:59:00-07:00"
    )
    assert earliest_allowed(LA, quiet, ts("2026-06-01T23:10:00-07:00")) == ts(
        "2026-06-02T08:00:00-07:00"
    )
    # A window that does not wrap midnight.
    assert earliest_allowed(NY, quiet_window("12:00-14:00"), ts("2026-06-01T12:30:00-04:00")) == (
        ts("2026-06-01T14:00:00-04:00")
    )
    assert earliest_allowed(NY, None, now) == now


def test_a_number_with_several_zones_waits_for_the_strictest():
    quiet = quiet_window("21:00-08:00")
    # Russian mobile numbers span Kaliningrad-ish to Kamchatka: 16:30 in Moscow, 01:30 in
    # Kamchatka. Kamchatka's morning (20:00 UTC) is 23:00 in Moscow, so the first time that
    # is daytime everywhere is 08:00 in the westernmost zone (05:00 UTC next day).
    now = ts("2026-06-01T13:30:00+00:00")
    allowed = earliest_allowed("+79161234567", quiet, now)
    assert allowed == ts("2026-06-02T05:00:00+00:00")
    assert datetime.fromtimestamp(allowed, UTC).hour == 5


# -- the store -------------------------------------------------------------------------------
@pytest.fixture
async def store(any_store):
    """Runs on both backends (the store contract)."""
    return any_store


def pool_message(
    message_id: str, to: tuple[str, ...], *, now: float = 1000.0, **rules: Any
) -> NewMessage:
    return NewMessage(
        id=message_id, api_key="k", route="r", recipients=to, recipient_routes=("r",) * len(to),
        sender=LONG[0], subject=None, text="hi", parts=(), batch_sizes={"r": 1},
        created_at=now, send_at=now, expires_at=now + 3600, pool="promo",
        pool_rules=PoolRules("promo", rules.get("consent", "opt_out"), rules.get("cap")),
        recipient_senders=tuple(LONG[i % 3] for i in range(len(to))),
    )  # fmt: skip


def change(number: str, status: str, at: float, source: str = "api") -> ConsentChange:
    return ConsentChange(
        pool="promo", number=number, status=status, source=source, at=at, recorded_at=at
    )


async def test_consent_history_is_append_only_evidence(store):
    await store.set_consent(change(NY, "opted_in", 10.0, "web-form"))
    await store.set_consent(change(NY, "opted_out", 20.0, "keyword"))
    record = await store.set_consent(change(NY, "opted_in", 30.0))
    assert (record.status, record.source, record.at) == ("opted_in", "api", 30.0)
    assert [(h.status, h.source, h.at) for h in record.history] == [
        ("opted_in", "web-form", 10.0),
        ("opted_out", "keyword", 20.0),
        ("opted_in", "api", 30.0),
    ]
    assert await store.get_consent("other", NY) is None
    # Retention never touches consent or its history.
    await store.purge_expired(1e12, 100)
    again = await store.get_consent("promo", NY)
    assert again is not None and len(again.history) == 3


async def test_refused_recipients_are_rejected_alone_and_all_refused_stores_nothing(store):
    await store.set_consent(change(LA, "opted_out", 1.0))
    record, created = await store.create_message(pool_message("msg_1", (NY, LA)))
    assert created
    assert [(r.status, (r.error or "").split(":")[0]) for r in record.recipients] == [
        ("queued", ""),
        ("rejected", "recipient_opted_out"),
    ]
    stored = await store.get_message("msg_1")
    assert stored is not None and stored.recipients == record.recipients
    assert stored.pool == "promo" and stored.recipients[0].sender == LONG[0]
    assert await store.queue_depths() == {"r": 1}
    with pytest.raises(RecipientsRefused) as caught:
        await store.create_message(pool_message("msg_2", (LA,)))
    assert isinstance(caught.value, ForbiddenError)
    assert caught.value.code == "recipient_opted_out" and caught.value.http_status == 403
    assert await store.get_message("msg_2") is None
    # opt_in pools need a recorded opt-in.
    with pytest.raises(RecipientsRefused) as caught:
        await store.create_message(pool_message("msg_3", (NY,), consent="opt_in"))
    assert caught.value.code == "consent_required"


async def test_daily_cap_counts_the_last_24_hours(store):
    for i in range(2):
        await store.create_message(pool_message(f"msg_{i}", (NY,), now=1000.0 + i, cap=2))
    with pytest.raises(RecipientsRefused) as caught:
        await store.create_message(pool_message("msg_x", (NY,), now=2000.0, cap=2))
    assert caught.value.code == "frequency_capped"
    # 24 h after the first send, one slot is free again.
    record, _ = await store.create_message(pool_message("msg_y", (NY,), now=87_400.5, cap=2))
    assert record.recipients[0].status == "queued"


async def test_sticky_sender_is_remembered_and_claimed_batches_carry_it(store):
    await store.create_message(pool_message("msg_1", (NY, LA)))
    assert await store.sticky_senders("promo", [NY, LA, "+15555550100"]) == {
        NY: LONG[0],
        LA: LONG[1],
    }
    batches = await store.claim_due("r", 2000.0, 10)
    assert sorted((b.recipients[0], b.sender) for b in batches) == [(NY, LONG[0]), (LA, LONG[1])]


async def test_retention_drops_pool_sends_older_than_two_days(store):
    await store.create_message(pool_message("msg_1", (NY,), now=1000.0, cap=1))
    await store.create_message(pool_message("msg_2", (LA,), now=1000.0 + 3 * 86_400, cap=1))
    await store.purge_expired(0.0, 100)
    # NY's old send is gone (a new message is allowed even at cap 1); LA's still counts.
    record, _ = await store.create_message(pool_message("msg_3", (NY,), now=1001.0, cap=1))
    assert record.recipients[0].status == "queued"
    with pytest.raises(RecipientsRefused):
        await store.create_message(pool_message("msg_4", (LA,), now=1001.0 + 3 * 86_400, cap=1))
