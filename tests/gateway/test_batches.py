"""Bulk sends (POST/GET/DELETE /v1/batches) through a real gateway and MMSC on loopback."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

import aiohttp
import pytest

from gateway.app import Gateway
from gateway.config.model import GatewayConfig
from gateway.store import NewMessage
from gateway.store.campaign_records import NewCampaign
from protocol import SubmitReq
from tests.gateway.callback_helpers import (
    Receiver,
    TinyMmsc,
    bearer,
    build_config,
    raw_config,
    running,
    url_of,
)
from tests.gateway.support import b64, jpeg_bytes


def numbers(count: int, start: int = 0) -> list[str]:
    """Valid distinct E.164 numbers (US, 212 area)."""
    return [f"+1212555{n:04d}" if n < 10_000 else f"+1646555{n - 10_000:04d}" for n in
            range(start, start + count)]  # fmt: skip


async def post(
    gateway: Gateway, body: Any = None, *, data: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url_of(gateway.listeners.api, "/v1/batches"),
            json=body,
            data=data,
            headers={**bearer(), **(headers or {})},
        ) as response,
    ):
        return response.status, await response.json()


async def call(gateway: Gateway, method: str, path: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url_of(gateway.listeners.api, path), headers=bearer()) as response,
    ):
        return response.status, await response.json()


async def wait_batch(
    gateway: Gateway, batch_id: str, statuses: set[str], timeout: float = 20.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, resource = await call(gateway, "GET", f"/v1/batches/{batch_id}")
        assert status == 200, resource
        if resource["status"] in statuses:
            return resource
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"batch stayed {resource['status']}: {resource}")
        await asyncio.sleep(0.05)


def recipients_of(submits: list[SubmitReq]) -> list[str]:
    return [a.value for s in submits for a in s.recipients.to]


async def test_json_batch_lists_invalid_lines_and_sends_every_valid_one(tmp_path, mmsc):
    config = build_config(tmp_path, mmsc.url)
    to = [*numbers(3), "12345", 7, *numbers(2, start=3), "+1"]
    async with running(config) as gateway:
        status, resource = await post(gateway, {"to": to, "text": "sale", "client_ref": "c1"})
        assert status == 202, resource
        assert resource["id"].startswith("bat_")
        assert resource["recipients"] == 5
        assert resource["counts"]["queued"] == 5
        assert resource["invalid_count"] == 3
        assert [(i["line"], i["value"]) for i in resource["invalid"]] == [
            (4, "12345"),
            (5, "7"),
            (8, "+1"),
        ]
        assert all(i["error"] for i in resource["invalid"])
        done = await wait_batch(gateway, resource["id"], {"sent", "completed"})
    assert done["counts"]["submitted"] == 5
    assert done["progress"] == 1.0
    assert sorted(recipients_of(mmsc.submits)) == sorted(numbers(5))
    assert {s.subject for s in mmsc.submits} == {None}


async def test_csv_batch_with_media_prepares_the_content_once(tmp_path, mmsc):
    config = build_config(tmp_path, mmsc.url)
    image = jpeg_bytes((320, 240))
    csv = "number\n" + "\n".join(numbers(40)) + "\n\nnot-a-number\n"
    form = aiohttp.FormData()
    form.add_field("message", json.dumps({"text": "look", "media": ["photo"]}))
    form.add_field("photo", image, filename="p.jpg", content_type="image/jpeg")
    form.add_field("recipients", csv.encode(), filename="to.csv", content_type="text/csv")
    async with running(config) as gateway:
        status, resource = await post(gateway, data=form)
        assert status == 202, resource
        assert resource["recipients"] == 40
        # Line 1 is the header, line 42 blank: the bad value is on line 43.
        assert [(i["line"], i["value"]) for i in resource["invalid"]] == [(43, "not-a-number")]
        await wait_batch(gateway, resource["id"], {"sent", "completed"})
        db = sqlite3.connect(tmp_path / "gateway.sqlite3")
        parts = {row[0] for row in db.execute("SELECT parts_json FROM messages")}
        db.close()
    assert len(mmsc.submits) == 40
    # One stored content for all 40 messages: the same parts (digests) everywhere.
    assert len(parts) == 1
    images = {
        p.data
        for s in mmsc.submits
        for a in s.attachments
        for p in a.parts
        if p.content_type.startswith("image/")
    }
    assert len(images) == 1


async def test_route_with_several_recipients_per_submit_shares_submitreqs(tmp_path, mmsc):
    config = build_config(tmp_path, mmsc.url, mmsc={"max_recipients_per_submit": 10})
    async with running(config) as gateway:
        status, resource = await post(gateway, {"to": numbers(25), "text": "hi"})
        assert status == 202, resource
        await wait_batch(gateway, resource["id"], {"sent", "completed"})
    assert sorted(len(s.recipients.to) for s in mmsc.submits) == [5, 10, 10]
    assert sorted(recipients_of(mmsc.submits)) == sorted(numbers(25))


async def test_opted_out_recipients_are_refused_alone(tmp_path, mmsc):
    config = build_config(tmp_path, mmsc.url)
    to = numbers(6)
    async with running(config) as gateway:
        # Two recipients sent STOP to the route's short code earlier.
        await gateway.store.write(
            lambda conn: conn.executemany(
                "INSERT INTO suppressions (number, short_code, keyword, created_at) "
                "VALUES (?, '1234', 'STOP', 0)",
                [(to[1].lstrip("+"),), (to[4].lstrip("+"),)],
            )
        )
        status, resource = await post(gateway, {"to": to, "text": "promo"})
        assert status == 202, resource
        assert resource["refused_count"] == 2
        assert [(r["line"], r["value"]) for r in resource["refused"]] == [(2, to[1]), (5, to[4])]
        assert all(r["error"].startswith("recipient_opted_out") for r in resource["refused"])
        assert resource["counts"]["rejected"] == 2
        await wait_batch(gateway, resource["id"], {"sent", "completed"})
        _, page = await call(
            gateway, "GET", f"/v1/batches/{resource['id']}/recipients?status=rejected"
        )
    assert sorted(r["to"] for r in page["data"]) == sorted([to[1], to[4]])
    assert sorted(recipients_of(mmsc.submits)) == sorted(set(to) - {to[1], to[4]})


async def test_pool_consent_refusals_are_listed(tmp_path, mmsc):
    raw_pool = [
        {
            "name": "promo",
            "consent": "opt_in",
            "sender": [{"address": "+14155550101", "kind": "long_code"}],
        }
    ]
    data = raw_config(tmp_path, mmsc.url)
    data["pool"] = raw_pool
    config = GatewayConfig.model_validate(data)
    to = numbers(4)
    async with running(config) as gateway:
        async with aiohttp.ClientSession() as session:
            r = await session.put(
                url_of(gateway.listeners.api, f"/v1/pools/promo/subscribers/{to[0]}"),
                json={"status": "opted_in", "source": "web-form"},
                headers=bearer(),
            )
            assert r.status in (200, 201), await r.text()
        status, resource = await post(gateway, {"to": to, "text": "deal", "pool": "promo"})
        assert status == 202, resource
        assert resource["refused_count"] == 3
        assert {r["error"].split(":")[0] for r in resource["refused"]} == {"consent_required"}
        await wait_batch(gateway, resource["id"], {"sent", "completed"})
    assert recipients_of(mmsc.submits) == [to[0]]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"text": "x"}, "validation_error"),
        ({"to": ["123", "abc"], "text": "x"}, "no_valid_recipients"),
        ({"to": ["+12125550100"], "text": "x", "events": "all"}, "validation_error"),
        ({"to": ["+12125550100"], "text": "x", "colour": "red"}, "unknown_field"),
        ({"to": ["+12125550100"]}, "empty_message"),
        ({"to": ["+12125550100"], "text": "x", "route": "nowhere"}, "unknown_route"),
    ],
)
async def test_bad_requests_are_refused_with_a_code_and_store_nothing(tmp_path, mmsc, body, code):
    config = build_config(tmp_path, mmsc.url)
    async with running(config) as gateway:
        status, resource = await post(gateway, body)
        count = await gateway.store.read(
            lambda conn: conn.execute(
                "SELECT (SELECT COUNT(*) FROM campaigns) + (SELECT COUNT(*) FROM messages)"
            ).fetchone()[0]
        )
    assert status == 400, resource
    assert resource["error"]["code"] == code
    assert count == 0


async def test_malformed_json_and_too_many_recipients(tmp_path, mmsc):
    config = build_config(tmp_path, mmsc.url, gateway={"max_recipients_per_batch": 10})
    async with running(config) as gateway:
        malformed = await post(
            gateway,
            data=b'{"to": ["+12125550100",, "text": "x"}',
            headers={"Content-Type": "application/json"},
        )
        too_many = await post(gateway, {"to": numbers(11), "text": "x"})
        twice = await post(
            gateway,
            data=b'{"to": ["+12125550100"], "to": ["+12125550101"], "text": "x"}',
            headers={"Content-Type": "application/json"},
        )
        count = await gateway.store.read(
            lambda conn: conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        )
    assert malformed[0] == 400
    assert malformed[1]["error"]["code"] == "malformed_json"
    assert too_many[0] == 400
    assert too_many[1]["error"]["code"] == "too_many_recipients"
    assert twice[0] == 400
    assert twice[1]["error"]["field"] == "to"
    assert count == 0


async def test_recipients_are_paged_with_an_opaque_cursor(tmp_path, mmsc):
    config = build_config(tmp_path, mmsc.url, mmsc={"max_recipients_per_submit": 3})
    to = numbers(23)
    async with running(config) as gateway:
        status, resource = await post(gateway, {"to": to, "text": "hi"})
        assert status == 202
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            query = "?limit=5" + (f"&cursor={cursor}" if cursor else "")
            status, page = await call(
                gateway, "GET", f"/v1/batches/{resource['id']}/recipients{query}"
            )
            assert status == 200, page
            seen += [r["to"] for r in page["data"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        bad = await call(gateway, "GET", f"/v1/batches/{resource['id']}/recipients?cursor=zz")
        bad_status = await call(
            gateway, "GET", f"/v1/batches/{resource['id']}/recipients?status=lost"
        )
        other = await call(gateway, "GET", "/v1/batches/bat_nope")
    assert seen == to  # input order, each once
    assert pages == 5
    assert bad[0] == 400
    assert bad[1]["error"]["code"] == "bad_cursor"
    assert bad_status[1]["error"]["code"] == "invalid_status"
    assert other[0] == 404


async def test_cancel_stops_what_is_not_sent(tmp_path, mmsc):
    # An hour from now: nothing is due, so everything is still queued when we cancel.
    config = build_config(tmp_path, mmsc.url)
    async with running(config) as gateway:
        status, resource = await post(
            gateway,
            {"to": numbers(30), "text": "later", "send_at": "2100-01-01T00:00:00Z",
             "expires_at": "2100-01-02T00:00:00Z"},
        )  # fmt: skip
        assert status == 202, resource
        status, canceled = await call(gateway, "DELETE", f"/v1/batches/{resource['id']}")
        assert status == 200, canceled
        queued = await gateway.store.read(
            lambda conn: conn.execute(
                "SELECT COUNT(*) FROM batches WHERE state = 'queued'"
            ).fetchone()[0]
        )
        depth = dict(gateway.queue.depth)
    assert canceled["status"] == "canceled"
    assert canceled["counts"]["canceled"] == 30
    assert canceled["counts"]["queued"] == 0
    assert queued == 0
    assert depth.get("mock", 0) == 0
    assert mmsc.submits == []


async def test_webhooks_batch_status_only_unless_per_recipient(
    tmp_path, mmsc: TinyMmsc, receiver: Receiver
):
    config = build_config(tmp_path, mmsc.url, callback_url=receiver.url)
    async with running(config) as gateway:
        gateway.campaign_watcher.interval_seconds = 0.05
        _, quiet = await post(gateway, {"to": numbers(4), "text": "a"})
        _, loud = await post(
            gateway, {"to": numbers(3, start=4), "text": "b", "events": "per_recipient"}
        )
        await wait_batch(gateway, quiet["id"], {"sent"})
        await wait_batch(gateway, loud["id"], {"sent"})

        def arrived(events: list[dict[str, Any]]) -> bool:
            statuses = [e["data"]["status"] for e in events if e["type"] == "batch.status"]
            per = [e for e in events if e["type"] == "message.status"]
            return statuses.count("sent") == 2 and len(per) == 3

        await receiver.wait_for(arrived, timeout=10)
    batch_events: dict[str, list[str]] = {}
    for event in receiver.events:
        if event["type"] == "batch.status":
            batch_events.setdefault(event["data"]["batch_id"], []).append(event["data"]["status"])
    # One event per state change, in order (sending may be skipped when all go at once).
    for states in batch_events.values():
        assert states[0] == "queued"
        assert states[-1] == "sent"
        assert len(states) == len(set(states))
    per_recipient = [e for e in receiver.events if e["type"] == "message.status"]
    assert {r["to"] for e in per_recipient for r in e["data"]["recipients"]} == set(
        numbers(3, start=4)
    )
    assert set(batch_events) == {quiet["id"], loud["id"]}


async def test_idempotency_key_replays_the_batch(tmp_path, mmsc):
    config = build_config(tmp_path, mmsc.url)
    async with running(config) as gateway:
        body = {"to": numbers(3), "text": "once"}
        first = await post(gateway, body, headers={"Idempotency-Key": "k1"})
        again = await post(gateway, body, headers={"Idempotency-Key": "k1"})
        await wait_batch(gateway, first[1]["id"], {"sent", "completed"})
    assert first[0] == 202
    assert again[0] == 200
    assert again[1]["id"] == first[1]["id"]
    assert len(mmsc.submits) == 3


async def test_several_thousand_recipients_end_to_end(tmp_path, mmsc):
    config = build_config(tmp_path, mmsc.url, mmsc={"max_in_flight": 32})
    to = numbers(3000)
    image = b64(jpeg_bytes((160, 120)))
    async with running(config) as gateway:
        status, resource = await post(
            gateway, {"to": to, "text": "big", "media": [{"data": image}]}
        )
        assert status == 202, resource
        assert resource["counts"]["queued"] == 3000
        done = await wait_batch(gateway, resource["id"], {"sent", "completed"}, timeout=60)
    assert done["counts"]["submitted"] == 3000
    assert sorted(recipients_of(mmsc.submits)) == sorted(to)


async def test_non_utf8_csv_is_refused(tmp_path, mmsc):
    config = build_config(tmp_path, mmsc.url)
    form = aiohttp.FormData()
    form.add_field("message", json.dumps({"text": "x"}))
    form.add_field("recipients", b"number\n\xff\xfe+12125550100\n", filename="to.csv")
    async with running(config) as gateway:
        status, resource = await post(gateway, data=form)
    assert status == 400
    assert resource["error"]["code"] == "malformed_csv"
    assert resource["error"]["field"] == "recipients"


async def test_a_batch_never_answered_is_not_sent_and_is_removed_at_restart(tmp_path, mmsc):
    """Recipients committed while the batch is preparing are held; a gateway that died
    before the 202 removes them when it starts again, so nothing goes out."""
    config = build_config(tmp_path, mmsc.url)
    async with running(config) as gateway:
        now = gateway.clock()
        campaign_id, created = await gateway.store.create_campaign(
            NewCampaign(
                id="bat_unanswered", api_key="app", events="batch", callback_url=None,
                client_ref=None, idempotency_key=None, created_at=now,
            )
        )  # fmt: skip
        assert created
        chunk = NewMessage(
            id="msg_chunk", api_key="app", route="mock", recipients=tuple(numbers(5)),
            recipient_routes=("mock",) * 5, sender=None, subject=None, text="held",
            parts=(), batch_sizes={"mock": 1}, created_at=now, send_at=now,
            expires_at=now + 3600,
        )  # fmt: skip
        result = await gateway.store.add_campaign_chunk(campaign_id, chunk)
        assert result.accepted == 5
        gateway._wake("mock")
        await asyncio.sleep(0.3)
        held = await gateway.store.read(
            lambda conn: conn.execute(
                "SELECT COUNT(*) FROM batches WHERE state = 'held'"
            ).fetchone()[0]
        )
        status, _ = await call(gateway, "GET", f"/v1/batches/{campaign_id}")
    assert held == 5
    assert status == 404  # never acknowledged: not visible
    async with running(config) as gateway:
        left = await gateway.store.read(
            lambda conn: conn.execute(
                "SELECT (SELECT COUNT(*) FROM campaigns) + (SELECT COUNT(*) FROM messages) "
                "+ (SELECT COUNT(*) FROM batches) + (SELECT COUNT(*) FROM recipients)"
            ).fetchone()[0]
        )
    assert left == 0
    assert mmsc.submits == []


async def test_a_number_given_twice_is_sent_once_and_listed_as_duplicate(tmp_path, mmsc):
    config = build_config(tmp_path, mmsc.url)
    a, b, c = numbers(3)
    # The same numbers written differently still normalise to one E.164 number.
    to = [a, b, a, c, " " + b, "bad"]
    async with running(config) as gateway:
        status, resource = await post(gateway, {"to": to, "text": "once each"})
        assert status == 202, resource
        await wait_batch(gateway, resource["id"], {"sent", "completed"})
    assert resource["recipients"] == 3
    assert resource["invalid_count"] == 3
    assert [(i["line"], i["value"], i["error"]) for i in resource["invalid"][:2]] == [
        (3, a, "duplicate: the same number as line 1"),
        (5, " " + b, "duplicate: the same number as line 2"),
    ]
    assert sorted(recipients_of(mmsc.submits)) == sorted([a, b, c])


async def test_no_route_names_the_line_and_stores_nothing(tmp_path, mmsc):
    data = raw_config(tmp_path, mmsc.url, mmsc={"route_default": False, "prefixes": ["+1212"]})
    data["mmsc"].append({**data["mmsc"][0], "name": "uk", "prefixes": ["+44"]})
    config = GatewayConfig.model_validate(data)
    to = [*numbers(2), "+16465550100", *numbers(1, start=5)]
    async with running(config) as gateway:
        status, resource = await post(gateway, {"to": to, "text": "x"})
        count = await gateway.store.read(
            lambda conn: conn.execute(
                "SELECT (SELECT COUNT(*) FROM campaigns) + (SELECT COUNT(*) FROM messages)"
            ).fetchone()[0]
        )
    assert status == 400, resource
    assert resource["error"]["code"] == "no_route"
    assert resource["error"]["message"].startswith("line 3: ")
    assert count == 0
    assert mmsc.submits == []


async def test_cancel_of_a_batch_whose_recipients_are_all_final_is_refused(tmp_path, mmsc):
    config = build_config(tmp_path, mmsc.url)
    to = numbers(2)
    async with running(config) as gateway:
        # Every recipient sent STOP: each one is stored rejected, none is left to send.
        await gateway.store.write(
            lambda conn: conn.executemany(
                "INSERT INTO suppressions (number, short_code, keyword, created_at) "
                "VALUES (?, '1234', 'STOP', 0)",
                [(n.lstrip("+"),) for n in to],
            )
        )
        status, resource = await post(gateway, {"to": to, "text": "promo"})
        assert status == 202, resource
        assert resource["counts"]["rejected"] == 2
        refused = await call(gateway, "DELETE", f"/v1/batches/{resource['id']}")
        done = await wait_batch(gateway, resource["id"], {"completed"})
        again = await call(gateway, "DELETE", f"/v1/batches/{resource['id']}")
    for status, body in (refused, again):
        assert status == 409, body
        assert body["error"]["code"] == "batch_finished"
    assert done["counts"]["rejected"] == 2
    assert mmsc.submits == []


async def test_a_replay_while_the_first_batch_is_being_committed_is_told_to_retry(
    tmp_path, mmsc
):
    config = build_config(tmp_path, mmsc.url)
    async with running(config) as gateway:
        # The first request with this key is still committing its recipients.
        await gateway.store.create_campaign(
            NewCampaign(
                id="bat_first", api_key="app", events="batch", callback_url=None,
                client_ref=None, idempotency_key="k-busy", created_at=gateway.clock(),
            )
        )  # fmt: skip
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                url_of(gateway.listeners.api, "/v1/batches"),
                json={"to": numbers(2), "text": "again"},
                headers={**bearer(), "Idempotency-Key": "k-busy"},
            ) as response,
        ):
            status, body = response.status, await response.json()
            retry_after = response.headers.get("Retry-After")
    assert status == 409, body
    assert body["error"]["code"] == "batch_in_progress"
    assert retry_after == "1"
    assert mmsc.submits == []
