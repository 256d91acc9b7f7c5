"""The SMS fallback in the store (real SQLite): when an intent is recorded, that it is
recorded once, and how Kannel reports move the recipient."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.store.records import ReportRow
from tests.gateway.test_store import new_message


@pytest.fixture
async def store(any_store):
    """Runs on both backends (the store contract)."""
    return any_store


async def submitted_batch(store, mid="m1", recipients=("+12025550101",)):
    await store.create_message(new_message(mid, recipients))
    [batch] = await store.claim_due("r1", 200.0, 10)
    return batch


async def status_of(store, mid, idx=0):
    record = await store.get_message(mid)
    return record.recipients[idx]


async def test_rejection_records_one_intent_when_the_route_falls_back(store):
    await store.sync_sms_routes({"r1": ("rejected",)})
    batch = await submitted_batch(store)
    await store.mark_failed(batch.id, "rejected", "2002", 210.0)
    recipient = await status_of(store, "m1")
    assert (recipient.status, recipient.fallback) == ("sms_queued", "sms")
    assert (await store.get_message("m1")).status == "sms_queued"
    [job] = await store.claim_sms(220.0, 10)
    assert (job.cause, job.to, job.attempts, job.text) == ("rejected", "+12025550101", 1, "t")
    assert await store.claim_sms(230.0, 10) == []  # claimed: not handed out twice


@pytest.mark.parametrize(
    ("causes", "outcome"),
    [((), "rejected"), (("failed", "expired"), "rejected"), (("rejected",), "failed")],
)
async def test_no_intent_unless_the_route_lists_the_cause(store, causes, outcome):
    await store.sync_sms_routes({"r1": causes})
    batch = await submitted_batch(store)
    await store.mark_failed(batch.id, outcome, "nope", 210.0)
    recipient = await status_of(store, "m1")
    assert (recipient.status, recipient.fallback) == (outcome, None)
    assert await store.claim_sms(220.0, 10) == []


def report(state, mm7_id, at, status="Rejected"):
    return ReportRow(
        kind="delivery", mmsc="r1", dedupe_key=f"{mm7_id}-{state}-{at}", mm7_message_id=mm7_id,
        recipient="+12025550101", sender=None, mm_status=status, mm_status_extension=None,
        status_text=None, mapped_state=state, report_at=at, received_at=at, transaction_id=None,
    )  # fmt: skip


async def test_report_rejection_falls_back_once_and_mm7_reports_no_longer_move_it(store):
    await store.sync_sms_routes({"r1": ("rejected", "expired")})
    batch = await submitted_batch(store)
    await store.mark_submitted(batch.id, "mm7-1", 205.0)
    result = await store.store_report(report("rejected", "mm7-1", 210.0))
    assert result.outcome == "applied"
    assert (await status_of(store, "m1")).status == "sms_queued"
    # Later MM7 reports (a retried "Rejected", a late "Expired") change nothing now.
    await store.store_report(report("rejected", "mm7-1", 211.0))
    await store.store_report(report("expired", "mm7-1", 212.0, "Expired"))
    assert (await status_of(store, "m1")).status == "sms_queued"
    assert len(await store.claim_sms(220.0, 10)) == 1


async def test_sent_then_kannel_reports(store):
    await store.sync_sms_routes({"r1": ("rejected",)})
    batch = await submitted_batch(store)
    await store.mark_failed(batch.id, "rejected", "2002", 210.0)
    [job] = await store.claim_sms(220.0, 10)
    await store.sms_sent(job.id, 1, "gsm7", 221.0)
    assert (await status_of(store, "m1")).status == "sms_submitted"
    assert await store.sms_report(job.id, 8, 222.0) == "sms_submitted"  # SMSC accepted
    assert await store.sms_report(job.id, 1, 223.0) == "delivered"
    assert await store.sms_report(job.id, 2, 224.0) == "delivered"  # final stays final
    assert await store.sms_report(999, 1, 225.0) == "unknown"


@pytest.mark.parametrize("dlr_type", [2, 16])
async def test_kannel_failure_reports_fail_the_recipient(store, dlr_type):
    await store.sync_sms_routes({"r1": ("rejected",)})
    batch = await submitted_batch(store)
    await store.mark_failed(batch.id, "rejected", "2002", 210.0)
    [job] = await store.claim_sms(220.0, 10)
    await store.sms_sent(job.id, 1, "gsm7", 221.0)
    assert await store.sms_report(job.id, dlr_type, 222.0) == "failed"
    recipient = await status_of(store, "m1")
    assert recipient.error == f"sms report: type {dlr_type}"


async def test_a_report_for_an_unanswered_call_stops_the_resend(store):
    """Crash or timeout after sendsms: the intent waits; Kannel's report proves it went."""
    await store.sync_sms_routes({"r1": ("rejected",)})
    batch = await submitted_batch(store)
    await store.mark_failed(batch.id, "rejected", "2002", 210.0)
    [job] = await store.claim_sms(220.0, 10)
    # The process dies here; the next start requeues the call for after the resend delay.
    assert await store.requeue_sms_sending(280.0, 230.0) == 1
    assert await store.claim_sms(240.0, 10) == []
    assert await store.sms_report(job.id, 8, 250.0) == "sms_submitted"
    assert await store.claim_sms(300.0, 10) == []  # never sent again


async def test_sms_only_message_has_no_batches(store):
    await store.create_message(
        replace(new_message("m2", ("+12025550101", "+12025550102")), sms_only=True)
    )
    assert await store.claim_due("r1", 200.0, 10) == []
    jobs = await store.claim_sms(200.0, 10)
    assert sorted((j.cause, j.to) for j in jobs) == [
        ("no_mms", "+12025550101"), ("no_mms", "+12025550102"),
    ]  # fmt: skip


async def test_cancel_stops_sms_not_yet_sent(store):
    await store.create_message(
        replace(new_message("m3", ("+12025550101", "+12025550102")), sms_only=True)
    )
    [first] = await store.claim_sms(200.0, 1)  # one is on its way to Kannel
    plan = await store.cancel_message("m3", 201.0)
    assert plan.found
    record = await store.get_message("m3")
    assert [r.status for r in record.recipients] == ["sms_queued", "canceled"]
    assert await store.claim_sms(300.0, 10) == []
    await store.sms_sent(first.id, 1, "gsm7", 202.0)
    assert (await store.get_message("m3")).recipients[0].status == "sms_submitted"


async def test_short_links_one_per_message_and_expire(store):
    await store.create_message(new_message("m1"))
    code = await store.short_link("m1", "AAAAAAAAAA", 500.0, 100.0)
    assert code == "AAAAAAAAAA"
    assert await store.short_link("m1", "BBBBBBBBBB", 900.0, 101.0) == "AAAAAAAAAA"
    link = await store.resolve_short_link("AAAAAAAAAA", 499.0)
    assert link is not None and link.message_id == "m1" and len(link.parts) == 1
    assert await store.resolve_short_link("AAAAAAAAAA", 500.0) is None  # expired
    assert await store.resolve_short_link("BBBBBBBBBB", 200.0) is None
