"""Delivery/read reports: the MMStatus table, the update policy, and reports over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from gateway.inbound.reports import (
    DELIVERY_STATUS_LABELS,
    DELIVERY_STATUS_TABLE,
    map_delivery_status,
    map_read_status,
)
from gateway.store import NewMessage, SqliteStore
from gateway.store.records import RECIPIENT_STATES, ReportRow
from gateway.store.transitions import HARD_FINAL, next_state, pick_recipient, same_number
from protocol import DeliveryReportRsp, ReadReplyRsp, decode
from protocol.messages import MM_DELIVERY_STATUSES
from tests.gateway.callback_helpers import (
    build_config,
    delivery_report,
    message_state,
    post_mm7,
    read_reply,
    running,
    submitted,
)

TO = "+821012345678"

# -- the table -------------------------------------------------------------------------------

EXPECTED = {
    "Retrieved": "delivered",
    "Forwarded": "delivered",
    "Deferred": "submitted",
    "Indeterminate": "submitted",
    "Expired": "expired",
    "Rejected": "rejected",
    "Unrecognised": "failed",
    "DeliveryConditionNotMet": "failed",
}


def test_table_covers_every_schema_value_with_a_known_state():
    assert set(EXPECTED) == set(MM_DELIVERY_STATUSES)
    for status in MM_DELIVERY_STATUSES:
        mapping = map_delivery_status(status)
        assert mapping.state == EXPECTED[status]
        assert mapping.label == status
        assert mapping.label in DELIVERY_STATUS_LABELS
    assert {m.state for m in DELIVERY_STATUS_TABLE.values()} <= RECIPIENT_STATES


@pytest.mark.parametrize(
    ("raw", "label", "state"),
    [
        ("retrieved", "Retrieved", "delivered"),
        (" RETRIEVED ", "Retrieved", "delivered"),
        ("Unrecognized", "Unrecognised", "failed"),
        ("1000", "numeric_success", "delivered"),
        ("2003", "numeric_failure", "failed"),
        ("Whatever", "other", None),
        (None, "other", None),
    ],
)
def test_vendor_spellings(raw, label, state):
    mapping = map_delivery_status(raw)
    assert (mapping.label, mapping.state) == (label, state)


def test_read_status_table():
    assert map_read_status("Read").state == "read"
    assert map_read_status("Deleted").state == "delivered"
    assert map_read_status("Indeterminate").state is None


def test_policy_last_report_wins_and_final_states_hold():
    # Non-final Rejected for a retried attempt, then the final Retrieved.
    assert next_state("submitted", None, "rejected", 10.0) == "rejected"
    assert next_state("rejected", 10.0, "delivered", 20.0) == "delivered"
    # A stale report (older Date) changes nothing, even for a soft-final state.
    assert next_state("rejected", 20.0, "submitted", 10.0) is None
    # Hard-final states are never reopened, however new the report.
    for state in HARD_FINAL - {"delivered"}:
        assert next_state(state, 10.0, "rejected", 99.0) is None
    assert next_state("delivered", 10.0, "rejected", 99.0) is None
    # ... except that a read reply moves delivered to read.
    assert next_state("delivered", 10.0, "read", 5.0) == "read"
    assert next_state("submitted", None, None, 1.0) is None


def test_number_matching():
    assert same_number("+821012345678", "821012345678")
    assert same_number("+821012345678", "01012345678")
    assert same_number("+821012345678", "+82 10-1234-5678/TYPE=PLMN")
    assert not same_number("+821012345678", "+821012345679")
    assert not same_number("1234", "01234")
    assert not same_number(None, "1")
    cands = [("m", 0, "+821011111111"), ("m", 1, "+821022222222")]
    assert pick_recipient(cands, ("1234", "821022222222")) == ("m", 1)  # swapped fields
    assert pick_recipient(cands, ("+821033333333",)) is None
    assert pick_recipient(cands[:1], (None,)) == ("m", 0)


# -- store level: a report that overtakes our own SubmitRsp commit --------------------------------


async def test_report_before_submit_commit_is_applied_when_it_arrives(tmp_path):
    store = SqliteStore(tmp_path / "db.sqlite3")
    await store.open()
    try:
        await store.create_message(
            NewMessage(
                id="msg_1", api_key="app", route="r", recipients=(TO,), recipient_routes=("r",),
                sender="1234", subject=None, text="t", parts=(), batch_sizes={"r": 1},
                created_at=1.0, send_at=1.0, expires_at=10_000.0,
            )
        )  # fmt: skip
        [batch] = await store.claim_due("r", 2.0, 1)
        row = ReportRow(
            kind="delivery", mmsc="r", dedupe_key="k1", mm7_message_id="mid-early",
            recipient=TO, sender="1234", mm_status="Retrieved", mm_status_extension=None,
            status_text=None, mapped_state="delivered", report_at=3.0, received_at=3.0,
            transaction_id="t",
        )  # fmt: skip
        result = await store.store_report(row)
        assert result.outcome == "unmatched"
        await store.mark_submitted(batch.id, "mid-early", 4.0)
        record = await store.get_message("msg_1")
        assert record is not None
        assert record.recipients[0].status == "delivered"
        assert record.status == "delivered"
        counts = await store.report_counts()
        assert counts == {"applied": 1}
    finally:
        await store.close()


# -- over HTTP -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mm_status", "state"), sorted(EXPECTED.items()))
async def test_each_mm_status_over_http(tmp_path, mmsc, mm_status, state):
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        message_id, mm7_id = await submitted(s, gw, TO)
        status, body, _ = await post_mm7(s, gw, delivery_report(mm7_id, TO, mm_status))
        assert status == 200
        answer = decode(body)
        assert isinstance(answer, DeliveryReportRsp)
        assert answer.status_code == 1000
        assert answer.transaction_id == "dr-1"
        assert await message_state(s, gw, message_id) == state
        metric = gw.registry.get_sample_value(
            "mm7gw_delivery_reports_total", {"mmsc": "mock", "mm_status": mm_status}
        )
        assert metric == 1.0


async def test_duplicates_stale_and_non_final_reports(tmp_path, mmsc):
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        message_id, mm7_id = await submitted(s, gw, TO)
        # Non-final Rejected (the MMSC will retry), sent twice: the copy is idempotent.
        first = delivery_report(mm7_id, TO, "Rejected", date=t0)
        for _ in range(2):
            status, _, _ = await post_mm7(s, gw, first)
            assert status == 200
        assert await message_state(s, gw, message_id) == "rejected"
        # A later attempt succeeds: the last report wins.
        await post_mm7(
            s, gw, delivery_report(mm7_id, TO, "Retrieved", date=t0 + timedelta(minutes=2))
        )
        assert await message_state(s, gw, message_id) == "delivered"
        # A stale Rejected (older Date) delivered late does not undo it.
        await post_mm7(
            s, gw, delivery_report(mm7_id, TO, "Rejected", date=t0 + timedelta(minutes=1))
        )
        assert await message_state(s, gw, message_id) == "delivered"
        counts = await gw.store.report_counts()
        assert counts == {"applied": 2, "unchanged": 1}


async def test_stale_report_does_not_override_soft_final(tmp_path, mmsc):
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        message_id, mm7_id = await submitted(s, gw, TO)
        await post_mm7(
            s, gw, delivery_report(mm7_id, TO, "Rejected", date=t0 + timedelta(minutes=1))
        )
        await post_mm7(s, gw, delivery_report(mm7_id, TO, "Deferred", date=t0))
        assert await message_state(s, gw, message_id) == "rejected"
        assert (await gw.store.report_counts()).get("stale") == 1


async def test_swapped_sender_recipient_and_missing_plus(tmp_path, mmsc):
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        message_id, mm7_id = await submitted(s, gw, TO)
        report = delivery_report(mm7_id, "1234", "Retrieved", sender=TO.lstrip("+"))
        status, _, _ = await post_mm7(s, gw, report)
        assert status == 200
        assert await message_state(s, gw, message_id) == "delivered"


async def test_numeric_status_from_a_korean_mmsc(tmp_path, mmsc):
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        message_id, mm7_id = await submitted(s, gw, TO)
        await post_mm7(s, gw, delivery_report(mm7_id, TO.lstrip("+"), "1000"))
        assert await message_state(s, gw, message_id) == "delivered"


async def test_unknown_message_id_is_kept_answered_and_counted(tmp_path, mmsc):
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        status, body, _ = await post_mm7(s, gw, delivery_report("no-such-id", TO, "Retrieved"))
        assert status == 200
        answer = decode(body)
        assert isinstance(answer, DeliveryReportRsp)
        assert answer.status_code == 1000
        assert await gw.store.report_counts() == {"unmatched": 1}
        assert (
            gw.registry.get_sample_value("mm7gw_unknown_delivery_reports_total", {"mmsc": "mock"})
            == 1.0
        )


async def test_read_reply_moves_to_read(tmp_path, mmsc):
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        message_id, mm7_id = await submitted(s, gw, TO)
        await post_mm7(s, gw, delivery_report(mm7_id, TO, "Retrieved"))
        status, body, _ = await post_mm7(s, gw, read_reply(mm7_id, TO, "Read"))
        assert status == 200
        answer = decode(body)
        assert isinstance(answer, ReadReplyRsp)
        assert answer.status_code == 1000
        assert await message_state(s, gw, message_id) == "read"
