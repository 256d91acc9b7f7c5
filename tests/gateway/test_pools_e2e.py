"""Sender pools end to end: the real gateway, the bundled mock MMSC (what it recorded is
what was sent), the consent API and keywords through the mock's ``/admin/deliver``."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from tests.gateway.pool_helpers import (
    Clock,
    call,
    gateway,
    metric,
    pool_config,
    seen,
    start_mock,
    wait_seen,
)
from tests.gateway.support import b64, jpeg_bytes

pytest.importorskip("gateway.mock_mmsc.app")

LONG = ("+14155550101", "+14155550102", "+14155550103")
NY, LA = "+12125550100", "+13105550100"
KR = "+821012345678"


def long_codes(**pool: Any) -> dict[str, Any]:
    return {
        "name": "promo",
        "sender": [{"address": a, "kind": "long_code"} for a in LONG],
        **pool,
    }


async def deliver(mock: Any, sender: str, to: str, text: str) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.post(mock.base + "/admin/deliver", json={"from": sender, "to": to, "text": text}) as r,
    ):
        body = await r.json()
        assert r.status == 200 and body["delivered"] is True, body


# -- sender choice ---------------------------------------------------------------------------
async def test_each_recipient_gets_a_sender_and_keeps_it_across_restarts(tmp_path, mock_mmsc):
    mock, port = await start_mock(mock_mmsc, tmp_path / "rec")
    config = pool_config(tmp_path / "data", mock, port, [long_codes()])
    async with gateway(config) as gw:
        status, body = await gw.submit(
            {"to": ["+821011110001", "+821011110002", KR], "pool": "promo", "text": "a"}
        )
        assert status == 202, body
        assert body["pool"] == "promo"
        chosen = {r["to"]: r["from"] for r in body["recipients"]}
        # Least busy: three recipients, three idle long codes, one each.
        assert sorted(chosen.values()) == sorted(LONG)
        assert body["from"] == chosen["+821011110001"]
        found = await wait_seen(tmp_path / "rec", 3)
        assert {s.to[0]: s.sender for s in found} == chosen
    # A new process: its in-memory schedule is empty (it would pick LONG[0] first), but the
    # stored sticky sender wins.
    async with gateway(config) as gw:
        status, body = await gw.submit({"to": KR, "pool": "promo", "text": "b"})
        assert status == 202, body
        assert body["recipients"][0]["from"] == chosen[KR] != LONG[0]
        found = await wait_seen(tmp_path / "rec", 4)
        assert found[-1].sender == chosen[KR] and found[-1].to == (KR,)
        assert await metric(gw, "mm7gw_pool_sends_total", pool="promo", sender=chosen[KR]) == 1


async def test_mms_only_from_mms_senders_and_text_and_link_without_one(tmp_path, mock_mmsc):
    mock, port = await start_mock(mock_mmsc, tmp_path / "rec")
    pools = [
        {
            "name": "mixed",
            "sender": [
                {"address": "ACME", "kind": "alphanumeric"},
                {"address": "12345", "kind": "short_code"},
            ],
        },
        {"name": "textonly", "sender": [{"address": "ACMEINFO", "kind": "alphanumeric"}]},
    ]
    image = {"data": b64(jpeg_bytes()), "content_type": "image/jpeg"}
    async with gateway(pool_config(tmp_path / "data", mock, port, pools)) as gw:
        to = [f"+82101111000{i}" for i in range(4)]
        status, body = await gw.submit({"to": to, "pool": "mixed", "text": "pic", "media": [image]})
        assert status == 202, body
        assert {r["from"] for r in body["recipients"]} == {"12345"}
        status, body = await gw.submit(
            {"to": KR, "pool": "textonly", "text": "pic", "media": [image]}
        )
        assert status == 202, body
        assert body["fallback"] == "link" and body["from"] == "ACMEINFO"
        found = await wait_seen(tmp_path / "rec", 5)
        assert {s.sender for s in found if s.media} == {"12345"}
        link = next(s for s in found if s.sender == "ACMEINFO")
        assert not link.media and "/v1/media/" in link.texts[0]


async def test_each_long_code_keeps_its_own_rate_and_the_pool_adds_them_up(tmp_path, mock_mmsc):
    """Three long codes at 1 MMS/s each on an unlimited route: ~3 MMS/s at the MMSC."""
    mock, port = await start_mock(mock_mmsc, tmp_path / "rec")
    config = pool_config(
        tmp_path / "data", mock, port, [long_codes()], mmsc_tps=0.0, mmsc_max_in_flight=8
    )
    image = {"data": b64(jpeg_bytes()), "content_type": "image/jpeg"}
    count = 30
    async with gateway(config) as gw:
        for i in range(count):
            status, body = await gw.submit(
                {"to": f"+8210222{i:05d}", "pool": "promo", "text": f"m{i}", "media": [image]}
            )
            assert status == 202, body
        found = await wait_seen(tmp_path / "rec", count, timeout=60.0)
    assert all(s.media for s in found)
    per_sender = {a: sorted(s.at for s in found if s.sender == a) for a in LONG}
    assert {a: len(t) for a, t in per_sender.items()} == dict.fromkeys(LONG, count // 3)
    for times in per_sender.values():
        # Token bucket of depth 1 at 1/s: n sends span at least n - 1 seconds; one more
        # send of slack for the recorder's file times on a loaded machine.
        for i in range(len(times)):
            for j in range(i + 1, len(times)):
                assert j - i + 1 <= 2 + (times[j] - times[i]), (i, j, times)
    span = max(s.at for s in found) - min(s.at for s in found)
    rate = (count - 1) / span
    print(f"pool of 3 long codes at 1/s: {count} MMS in {span:.2f} s = {rate:.2f} MMS/s")
    # More than one long code's worth (they really run in parallel), at most three's.
    assert 1.8 <= rate <= (count - 1) / (count / 3 - 1 - 0.5)


# -- consent ---------------------------------------------------------------------------------
ALERTS = {
    "name": "alerts",
    "consent": "opt_in",
    "help_text": "Acme alerts. Reply STOP to end.",
    "stop_text": "You will receive no more Acme alerts.",
    "start_text": "Welcome back to Acme alerts.",
    "sender": [{"address": "12345", "kind": "short_code"}],
}


async def test_consent_flow_with_keywords_through_the_mock(tmp_path, mock_mmsc):
    mock, port = await start_mock(mock_mmsc, tmp_path / "rec")
    config = pool_config(tmp_path / "data", mock, port, [ALERTS])
    path = f"/v1/pools/alerts/subscribers/{NY}"
    message = {"to": NY, "pool": "alerts", "text": "sale"}
    async with gateway(config) as gw:
        status, body = await gw.submit(message)
        assert status == 403 and body["error"]["code"] == "consent_required", body
        status, body = await call(
            gw,
            "PUT",
            path,
            {"status": "opted_in", "source": "web-form", "at": "2026-01-02T03:04:05Z"},
        )
        assert status == 200, body
        assert (body["status"], body["source"], body["at"]) == (
            "opted_in",
            "web-form",
            "2026-01-02T03:04:05Z",
        )
        status, body = await gw.submit(message)
        assert status == 202 and body["from"] == "12345", body
        await wait_seen(tmp_path / "rec", 1)

        await deliver(mock, NY, "12345", " stop ")
        status, body = await call(gw, "GET", path)
        assert body["status"] == "opted_out" and body["source"] == "keyword"
        assert [(h["status"], h["source"], h["reason"]) for h in body["history"]] == [
            ("opted_in", "web-form", None),
            ("opted_out", "keyword", "STOP"),
        ]
        # The pool's own text, from the pool sender the keyword went to, back to the number.
        reply = (await wait_seen(tmp_path / "rec", 2))[-1]
        assert (reply.sender, reply.to, reply.texts) == ("12345", (NY,), (ALERTS["stop_text"],))
        # The pool's record changed, not the route-level list.
        assert await gw.gateway.store.suppressed_numbers([(NY, "12345")]) == []
        status, body = await gw.submit(message)
        assert status == 403 and body["error"]["code"] == "recipient_opted_out", body

        await deliver(mock, NY.lstrip("+"), "12345", "HELP")
        reply = (await wait_seen(tmp_path / "rec", 3))[-1]
        assert reply.texts == (ALERTS["help_text"],)
        assert (await call(gw, "GET", path))[1]["status"] == "opted_out"

        await deliver(mock, NY, "12345", "Start")
        reply = (await wait_seen(tmp_path / "rec", 4))[-1]
        assert reply.texts == (ALERTS["start_text"],)
        status, body = await gw.submit(message)
        assert status == 202, body

        for keyword in ("stop", "start", "help"):
            assert (
                await metric(gw, "mm7gw_keyword_events_total", pool="alerts", keyword=keyword) == 1
            )
        assert (
            await metric(
                gw, "mm7gw_consent_refusals_total", pool="alerts", reason="consent_required"
            )
            == 1
        )
        assert (
            await metric(
                gw, "mm7gw_consent_refusals_total", pool="alerts", reason="recipient_opted_out"
            )
            == 1
        )

        status, body = await call(gw, "DELETE", path)
        assert status == 200 and body["status"] == "opted_out" and body["source"] == "api"
        assert len(body["history"]) == 4


async def test_one_refused_recipient_does_not_sink_the_others(tmp_path, mock_mmsc):
    mock, port = await start_mock(mock_mmsc, tmp_path / "rec")
    config = pool_config(tmp_path / "data", mock, port, [long_codes()])
    async with gateway(config) as gw:
        status, _ = await call(
            gw, "PUT", f"/v1/pools/promo/subscribers/{LA}", {"status": "opted_out"}
        )
        assert status == 200
        status, body = await gw.submit({"to": [NY, LA], "pool": "promo", "text": "x"})
        assert status == 202, body
        ny, la = body["recipients"]
        assert ny["status"] == "queued" and ny["error"] is None
        assert la["status"] == "rejected" and la["error"].startswith("recipient_opted_out: ")
        found = await wait_seen(tmp_path / "rec", 1)
        await asyncio.sleep(0.3)
        assert [s.to for s in seen(tmp_path / "rec")] == [(NY,)] == [s.to for s in found]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "field"),
    [
        (
            "PUT",
            f"/v1/pools/nope/subscribers/{NY}",
            {"status": "opted_in"},
            404,
            "unknown_pool",
            "pool",
        ),
        ("GET", f"/v1/pools/nope/subscribers/{NY}", None, 404, "unknown_pool", "pool"),
        ("DELETE", f"/v1/pools/nope/subscribers/{NY}", None, 404, "unknown_pool", "pool"),
        (
            "PUT",
            "/v1/pools/alerts/subscribers/12345",
            {"status": "opted_in"},
            400,
            "invalid_number",
            "number",
        ),
        ("DELETE", "/v1/pools/alerts/subscribers/+1555", None, 400, "invalid_number", "number"),
        (
            "PUT",
            f"/v1/pools/alerts/subscribers/{NY}",
            {"status": "subscribed"},
            400,
            "invalid_status",
            "status",
        ),
        (
            "PUT",
            f"/v1/pools/alerts/subscribers/{NY}",
            {"source": "x"},
            400,
            "invalid_status",
            "status",
        ),
        (
            "PUT",
            f"/v1/pools/alerts/subscribers/{NY}",
            {"status": "opted_in", "at": "yesterday"},
            400,
            "validation_error",
            "at",
        ),
        (
            "PUT",
            f"/v1/pools/alerts/subscribers/{NY}",
            {"status": "opted_in", "why": 1},
            400,
            "unknown_field",
            "why",
        ),
        (
            "POST",
            "/v1/messages",
            {"to": NY, "pool": "nope", "text": "x"},
            400,
            "unknown_pool",
            "pool",
        ),
        (
            "POST",
            "/v1/messages",
            {"to": NY, "pool": "alerts", "from": "12345", "text": "x"},
            400,
            "validation_error",
            "pool",
        ),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_stored(
    tmp_path, mock_mmsc, method, path, body, status, code, field
):
    mock, port = await start_mock(mock_mmsc, tmp_path / "rec")
    async with gateway(pool_config(tmp_path / "data", mock, port, [ALERTS])) as gw:
        got, answer = await call(gw, method, path, body)
        assert (got, answer["error"]["code"], answer["error"]["field"]) == (status, code, field)
        assert (await call(gw, "GET", f"/v1/pools/alerts/subscribers/{NY}"))[0] == 404
        assert await gw.gateway.store.queue_depths() == {}


# -- quiet hours and caps (injected clock) ---------------------------------------------------
async def test_quiet_hours_hold_each_recipient_until_its_local_morning(tmp_path, mock_mmsc):
    mock, port = await start_mock(mock_mmsc, tmp_path / "rec")
    config = pool_config(tmp_path / "data", mock, port, [long_codes(quiet_hours="21:00-08:00")])
    # 13:30 UTC: 09:30 in New York (may send), 06:30 in Los Angeles (quiet until 15:00 UTC).
    clock = Clock(datetime.fromisoformat("2026-06-01T13:30:00+00:00").timestamp())
    async with gateway(config, clock) as gw:
        status, body = await gw.submit({"to": [NY, LA], "pool": "promo", "text": "hi"})
        assert status == 202, body
        assert body["send_at"] == "2026-06-01T15:00:00Z"
        found = await wait_seen(tmp_path / "rec", 1)
        assert [s.to for s in found] == [(NY,)]
        await asyncio.sleep(1.5)  # the worker polls at least every second: still held
        assert len(seen(tmp_path / "rec")) == 1
        clock.advance(90 * 60)  # 15:00 UTC: 08:00 in Los Angeles
        found = await wait_seen(tmp_path / "rec", 2, timeout=5.0)
        assert found[-1].to == (LA,)


async def test_daily_cap_counts_what_was_accepted_in_the_last_24_hours(tmp_path, mock_mmsc):
    mock, port = await start_mock(mock_mmsc, tmp_path / "rec")
    config = pool_config(tmp_path / "data", mock, port, [long_codes(max_per_recipient_per_day=2)])
    clock = Clock(datetime.fromisoformat("2026-06-01T12:00:00+00:00").timestamp())
    async with gateway(config, clock) as gw:
        for _ in range(2):
            assert (await gw.submit({"to": NY, "pool": "promo", "text": "x"}))[0] == 202
        status, body = await gw.submit({"to": NY, "pool": "promo", "text": "x"})
        assert status == 403 and body["error"]["code"] == "frequency_capped", body
        status, body = await gw.submit({"to": [NY, LA], "pool": "promo", "text": "x"})
        assert status == 202
        assert [r["status"] for r in body["recipients"]] == ["rejected", "queued"]
        assert body["recipients"][0]["error"].startswith("frequency_capped: ")
        clock.advance(24 * 3600 + 1)
        assert (await gw.submit({"to": NY, "pool": "promo", "text": "x"}))[0] == 202
        assert (
            await metric(
                gw, "mm7gw_consent_refusals_total", pool="promo", reason="frequency_capped"
            )
            == 2
        )
