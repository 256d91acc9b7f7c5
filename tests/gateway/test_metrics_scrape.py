"""Scrape ``/metrics`` after a real run against the mock MMSC and check every DESIGN.md §7
metric against what the run did: accepted, answered, rejected, retried, reported, received,
webhooked, adapted; queues drained; bounded labels (no numbers or ids as label values)."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import __version__
from gateway.ops.metrics import MEDIA_RESULTS, MM_STATUSES, RETRY_REASONS, STATUS_CLASSES
from protocol import Address, DeliveryReportReq, decode, encode
from tests.gateway.callback_helpers import Receiver
from tests.gateway.support import API_KEY, b64, free_port, jpeg_bytes, make_config

pytestmark = pytest.mark.asyncio

AUTH = {"Authorization": f"Bearer {API_KEY}"}
NUMBERS = ["+12025550101", "+12025550102", "+12025550103", "+12025550104"]
PHONE = "+12025550199"
#: DESIGN.md §7 (plus the gateway's own extras) → label names.
FAMILIES = {
    "mm7gw_messages_accepted": {"route"},
    "mm7gw_submit_requests": {"mmsc", "status_class"},
    "mm7gw_submit_latency_seconds": {"mmsc"},
    "mm7gw_queue_depth": {"mmsc"},
    "mm7gw_in_flight": {"mmsc"},
    "mm7gw_throttle_wait_seconds": {"mmsc"},
    "mm7gw_retries": {"mmsc", "reason"},
    "mm7gw_delivery_reports": {"mmsc", "mm_status"},
    "mm7gw_inbound_messages": {"mmsc"},
    "mm7gw_webhook_deliveries": {"outcome"},
    "mm7gw_media_adaptations": {"result"},
    "mm7gw_decode_leniencies": {"mmsc", "kind"},
    "mm7gw_build_info": {"version"},
    "mm7gw_dead_letters": set(),
    "mm7gw_unknown_delivery_reports": {"mmsc"},
    "mm7gw_api_requests": {"method", "route", "status"},
}


class Api:
    """REST calls that also tally what ``mm7gw_api_requests_total`` should say."""

    def __init__(self, gw: Any) -> None:
        self.gw = gw
        self.calls: Counter[tuple[str, str, str]] = Counter()

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self.gw.session.post(
            self.gw.api + "/v1/messages", json=body, headers=AUTH
        ) as response:
            self.calls["POST", "/v1/messages", str(response.status)] += 1
            assert response.status == 202, await response.text()
            result: dict[str, Any] = await response.json()
            return result

    async def get(self, message_id: str) -> dict[str, Any]:
        async with self.gw.session.get(
            f"{self.gw.api}/v1/messages/{message_id}", headers=AUTH
        ) as response:
            self.calls["GET", "/v1/messages/{id}", str(response.status)] += 1
            assert response.status == 200
            result: dict[str, Any] = await response.json()
            return result

    async def wait(self, message_id: str, check: Any, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            resource = await self.get(message_id)
            if check(resource):
                return resource
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met: {resource}")
            await asyncio.sleep(0.02)


async def eventually(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def scrape(text: str) -> tuple[dict[str, Any], dict[tuple[str, frozenset[Any]], float]]:
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {
        (s.name, frozenset(s.labels.items())): s.value for f in families.values() for s in f.samples
    }
    return families, samples


async def test_scraped_metrics_match_the_run(tmp_path, mock_mmsc, run_gateway) -> None:
    receiver = Receiver(secret=API_KEY, fail_next=1)  # the first webhook POST fails once
    await receiver.start()
    try:
        await run_scenario(tmp_path, mock_mmsc, run_gateway, receiver)
    finally:
        await receiver.stop()


async def run_scenario(tmp_path, mock_mmsc, run_gateway, receiver: Receiver) -> None:
    mm7_port = free_port()  # the mock must know our MM7 URL before we start
    mock = await mock_mmsc(
        vasp_url=f"http://127.0.0.1:{mm7_port}/mm7/mock",
        dr_outcomes=(("Retrieved", 1.0),),
        callback_backoff=0.05,
        seed=7,
    )
    base = make_config(
        tmp_path,
        mock.url,
        listen__mm7=f"127.0.0.1:{mm7_port}",
        webhooks__initial_backoff_seconds=0.05,
        webhooks__max_backoff_seconds=0.1,
    )
    key = base.api_keys[0].model_copy(update={"callback_url": receiver.url})
    gw = await run_gateway(base.model_copy(update={"api_keys": [key]}))
    api = Api(gw)

    # 1-2: two messages delivered (one with an image), from the mock's delivery reports.
    m1 = await api.post(
        {
            "to": NUMBERS[0],
            "text": "hello",
            "media": [{"content_type": "image/jpeg", "data": b64(jpeg_bytes())}],
        }
    )
    m2 = await api.post({"to": NUMBERS[1], "text": "plain"})
    for message in (m1, m2):
        await api.wait(message["id"], lambda r: r["status"] == "delivered")
    # 3: rejected for good (2002 is a client error: no retry).
    await mock.configure(fail_rate="2002=1.0")
    m3 = await api.post({"to": NUMBERS[2], "text": "refused"})
    await api.wait(m3["id"], lambda r: r["status"] == "rejected")
    await mock.configure(fail_rate="")
    # 4: bare HTTP 500s (retried) until the mock is fixed through POST /admin/config.
    await mock.configure(http_error_rate=1.0)
    m4 = await api.post({"to": NUMBERS[3], "text": "eventually"})
    await api.wait(m4["id"], lambda r: r["attempts"] >= 3)
    await mock.configure(http_error_rate=0.0)
    done4 = await api.wait(m4["id"], lambda r: r["status"] == "delivered")
    failed_attempts = done4["attempts"] - 1
    assert failed_attempts >= 2
    # An inbound MMS from the mock.
    async with gw.session.post(
        mock.base + "/admin/deliver", json={"from": PHONE, "to": "12345", "text": "hi"}
    ) as response:
        assert response.status == 200
        assert (await response.json())["status_code"] == 1000
    # A delivery report with a vendor quirk (a wrong Content-Type) for a MessageID we never
    # sent: tolerated, counted as a leniency and an unknown report.
    quirky = DeliveryReportReq(
        transaction_id="dr-quirk",
        message_id="never-sent-1",
        recipient=Address.number(PHONE),
        sender=Address.short_code("12345"),
        date=datetime.now(UTC),
        mm_status="Expired",
    )
    _, payload = encode(quirky)
    quirk_type = "application/octet-stream"
    expected_leniencies = Counter(decode(payload, quirk_type).leniencies)
    assert expected_leniencies
    async with gw.session.post(
        gw.mm7 + "/mm7/mock", data=payload, headers={"Content-Type": quirk_type}
    ) as response:
        assert response.status == 200

    # Let the webhook outbox drain, and its counters catch up with the receiver.
    async def drained() -> bool:
        counts = await gw.gateway.store.outbox_counts()
        delivered = gw.gateway.registry.get_sample_value(
            "mm7gw_webhook_deliveries_total", {"outcome": "delivered"}
        )
        return counts.get("pending", 0) == 0 and delivered == len(receiver.events)

    await eventually(drained)
    assert receiver.failures == 1 and receiver.bad_signatures == 0
    assert {e["type"] for e in receiver.events} == {"message.status", "message.inbound"}

    async with gw.session.get(gw.ops + "/metrics") as response:
        assert response.status == 200
        families, samples = scrape(await response.text())

    def value(name: str, **labels: str) -> float:
        found = samples.get((name, frozenset(labels.items())))
        assert found is not None, f"no sample {name}{labels}"
        return found

    mock_ = {"mmsc": "mock"}
    assert value("mm7gw_messages_accepted_total", route="mock") == 4
    submits = {"success": 3, "client_error": 1, "http_error": failed_attempts}
    for status_class in STATUS_CLASSES:
        expected = submits.get(status_class, 0)
        got = value("mm7gw_submit_requests_total", mmsc="mock", status_class=status_class)
        assert got == expected, status_class
    attempts = sum(submits.values())
    # Batches that ended: one per success, the 2xxx one rejected; retried ones count once.
    outcomes = {"submitted": submits["success"], "rejected": submits["client_error"]}
    for outcome in ("submitted", "rejected", "failed", "expired", "canceled"):
        got = value("mm7gw_submission_outcomes_total", mmsc="mock", outcome=outcome)
        assert got == outcomes.get(outcome, 0), outcome
    assert value("mm7gw_submit_latency_seconds_count", **mock_) == attempts
    assert value("mm7gw_submit_latency_seconds_sum", **mock_) > 0
    assert value("mm7gw_submit_latency_seconds_bucket", mmsc="mock", le="+Inf") == attempts
    # tps = 0 (unlimited): every attempt passes the bucket, without waiting.
    assert value("mm7gw_throttle_wait_seconds_count", **mock_) == attempts
    assert value("mm7gw_throttle_wait_seconds_bucket", mmsc="mock", le="0.0") == attempts
    for reason in RETRY_REASONS:
        expected = failed_attempts if reason == "http" else 0
        assert value("mm7gw_retries_total", mmsc="mock", reason=reason) == expected, reason
    reports = {"Retrieved": 3, "Expired": 1}
    for mm_status in MM_STATUSES:
        got = value("mm7gw_delivery_reports_total", mmsc="mock", mm_status=mm_status)
        assert got == reports.get(mm_status, 0), mm_status
    assert value("mm7gw_unknown_delivery_reports_total", **mock_) == 1
    # Each correlated final report (Retrieved -> delivered, Expired -> expired) is timed;
    # the one for an unknown MessageID is not.
    timed = sum(reports.values()) - 1
    assert value("mm7gw_delivery_report_latency_seconds_count", **mock_) == timed
    assert value("mm7gw_delivery_report_latency_seconds_sum", **mock_) > 0
    assert value("mm7gw_inbound_messages_total", **mock_) == 1
    for kind, count in expected_leniencies.items():
        assert value("mm7gw_decode_leniencies_total", mmsc="mock", kind=kind) == count
    leniency_samples = [s for s in families["mm7gw_decode_leniencies"].samples]
    assert len(leniency_samples) == len(expected_leniencies)
    assert value("mm7gw_webhook_deliveries_total", outcome="delivered") == len(receiver.events)
    assert value("mm7gw_webhook_deliveries_total", outcome="retry") == receiver.failures
    assert value("mm7gw_webhook_deliveries_total", outcome="dead_letter") == 0
    assert value("mm7gw_dead_letters") == 0
    # m1's image fits as it was (its text part is not media); text-only messages skip
    # the pipeline.
    for result in MEDIA_RESULTS:
        expected = 1 if result == "unchanged" else 0
        assert value("mm7gw_media_adaptations_total", result=result) == expected, result
    assert value("mm7gw_queue_depth", **mock_) == 0
    assert value("mm7gw_in_flight", **mock_) == 0
    assert value("mm7gw_build_info", version=__version__) == 1
    for (method, route, status), count in api.calls.items():
        got = value("mm7gw_api_requests_total", method=method, route=route, status=status)
        assert got == count, (method, route, status)
    assert sum(s.value for s in families["mm7gw_api_requests"].samples) == sum(api.calls.values())

    # Process and runtime collectors.
    for name in ("process_cpu_seconds", "process_resident_memory_bytes", "python_info"):
        assert name in families, name
    assert "python_gc_objects_collected" in families

    # Every family with its label names; no number, message id or MM7 id as a label value.
    for name, labels in FAMILIES.items():
        assert name in families, name
        for sample in families[name].samples:
            assert set(sample.labels) - {"le"} == labels, (name, sample.labels)
    ids = {m["id"] for m in (m1, m2, m3, m4)}
    ids |= {(await api.get(m["id"]))["mm7_message_id"] for m in (m1, m2, m4)}
    label_values = {
        v
        for f in families.values()
        if f.name.startswith("mm7gw_")
        for s in f.samples
        for v in s.labels.values()
    }
    assert not ids & label_values
    assert not {v for v in label_values if re.search(r"\d{7,}", v)}
    assert not {v for v in label_values if "never-sent" in v or "dr-quirk" in v}
