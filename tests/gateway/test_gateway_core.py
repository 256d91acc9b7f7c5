"""The gateway's main job against the real mock MMSC over loopback HTTP."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.gateway.support import API_KEY, b64, jpeg_bytes, make_config, noisy_jpeg

pytestmark = pytest.mark.asyncio

TO = "+12025550101"


async def test_happy_path_with_image(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    status, body = await gw.submit(
        {
            "to": TO,
            "from": "12345",
            "subject": "hi",
            "text": "hello",
            "media": [{"content_type": "image/jpeg", "data": b64(jpeg_bytes())}],
        }
    )
    assert status == 202, body
    assert body["status"] == "queued" and body["recipients"][0]["to"] == TO
    done = await gw.wait_status(body["id"], {"submitted", "delivered"})
    assert done["mm7_message_id"]
    assert done["attempts"] == 1
    stats = await mock.stats()
    assert "SubmitReq" in str(stats)


async def test_recipients_batched_per_submit(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url, mmsc_max_recipients_per_submit=3))
    numbers = [f"+1202555010{i}" for i in range(7)]
    status, body = await gw.submit({"to": numbers, "text": "batch"})
    assert status == 202
    done = await gw.wait_status(body["id"], {"submitted", "delivered"})
    ids = {r["mm7_message_id"] for r in done["recipients"]}
    assert len(ids) == 3  # 3 + 3 + 1 recipients → three SubmitReqs


async def test_in_flight_window_is_respected(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc(latency_ms=150)
    gw = await run_gateway(make_config(tmp_path, mock.url, mmsc_max_in_flight=3))
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, len(gw.gateway.workers["mock"].in_flight))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    ids = [(await gw.submit({"to": TO, "text": f"m{i}"}))[1]["id"] for i in range(9)]
    for message_id in ids:
        await gw.wait_status(message_id, {"submitted", "delivered"})
    watcher.cancel()
    assert peak == 3


async def test_transient_failures_are_retried(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc(http_error_rate=1.0)
    gw = await run_gateway(make_config(tmp_path, mock.url))
    _, body = await gw.submit({"to": TO, "text": "x"})
    await asyncio.sleep(0.3)
    resource = await gw.get(body["id"])
    assert resource["status"] == "queued" and resource["attempts"] >= 2
    assert "HTTP 500" in (resource["last_error"] or "")
    await mock.configure(http_error_rate=0.0)
    done = await gw.wait_status(body["id"], {"submitted", "delivered"})
    assert done["mm7_message_id"]


@pytest.mark.parametrize(
    ("fail_rate", "expected"), [("2002=1.0", "rejected"), ("4004=1.0", "rejected")]
)
async def test_permanent_status_fails_without_retry(
    tmp_path, mock_mmsc, run_gateway, fail_rate, expected
):
    code = int(fail_rate.split("=")[0])
    mock = await mock_mmsc(fail_rate=((code, 1.0),))
    gw = await run_gateway(make_config(tmp_path, mock.url))
    _, body = await gw.submit({"to": TO, "text": "x"})
    done = await gw.wait_status(body["id"], {expected})
    assert done["attempts"] == 1
    assert str(code) in done["last_error"]


async def test_override_turns_a_code_into_fail(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc(fail_rate=((3001, 1.0),))
    gw = await run_gateway(make_config(tmp_path, mock.url, mmsc_status_overrides={"3001": "fail"}))
    _, body = await gw.submit({"to": TO, "text": "x"})
    done = await gw.wait_status(body["id"], {"rejected"})
    assert done["attempts"] == 1


async def test_slow_down_does_not_burn_attempts(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc(fail_rate=((4006, 1.0),))
    gw = await run_gateway(
        make_config(
            tmp_path,
            mock.url,
            mmsc_tps=50.0,
            mmsc_retry={"max_attempts": 2, "initial_backoff_seconds": 0.02, "jitter": 0.0},
        )
    )
    _, body = await gw.submit({"to": TO, "text": "x"})
    await asyncio.sleep(0.5)
    resource = await gw.get(body["id"])
    assert resource["status"] == "queued" and resource["attempts"] > 2
    assert gw.gateway.workers["mock"].bucket.factor < 1.0
    await mock.configure(fail_rate="")
    await gw.wait_status(body["id"], {"submitted", "delivered"})


async def test_network_errors_retry_until_expiry(tmp_path, run_gateway):
    gw = await run_gateway(make_config(tmp_path, "http://127.0.0.1:9/mm7"))
    expires = time.time() + 0.6
    from datetime import UTC, datetime

    _, body = await gw.submit(
        {"to": TO, "text": "x", "expires_at": datetime.fromtimestamp(expires, UTC).isoformat()}
    )
    done = await gw.wait_status(body["id"], {"expired"}, timeout=5)
    assert done["attempts"] >= 2


async def test_cancel_before_submission(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    from datetime import UTC, datetime

    later = datetime.fromtimestamp(time.time() + 3600, UTC).isoformat()
    _, body = await gw.submit({"to": TO, "text": "x", "send_at": later})
    async with gw.session.delete(
        f"{gw.api}/v1/messages/{body['id']}", headers={"Authorization": f"Bearer {API_KEY}"}
    ) as r:
        assert r.status == 200
        assert (await r.json())["status"] == "canceled"


async def test_cancel_after_submission_sends_cancelreq(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc(dr_delay=30)
    gw = await run_gateway(make_config(tmp_path, mock.url))
    _, body = await gw.submit({"to": TO, "text": "x", "delivery_report": False})
    await gw.wait_status(body["id"], {"submitted"})
    async with gw.session.delete(
        f"{gw.api}/v1/messages/{body['id']}", headers={"Authorization": f"Bearer {API_KEY}"}
    ) as r:
        assert r.status == 200
        assert (await r.json())["status"] == "canceled"
    assert "CancelReq" in str(await mock.stats())


async def test_idempotency_key(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    first_status, first = await gw.submit({"to": TO, "text": "x"}, **{"Idempotency-Key": "k1"})
    again_status, again = await gw.submit({"to": TO, "text": "x"}, **{"Idempotency-Key": "k1"})
    assert (first_status, again_status) == (202, 200) and first["id"] == again["id"]
    conflict_status, conflict = await gw.submit(
        {"to": TO, "text": "other"}, **{"Idempotency-Key": "k1"}
    )
    assert conflict_status == 409 and conflict["error"]["code"] == "idempotency_conflict"


async def test_idempotent_replay_is_answered_even_when_the_queue_is_full(tmp_path, run_gateway):
    gw = await run_gateway(
        make_config(tmp_path, "http://127.0.0.1:9/mm7", gateway__max_queue_depth=1)
    )
    first_status, first = await gw.submit({"to": TO, "text": "x"}, **{"Idempotency-Key": "k1"})
    assert first_status == 202
    # The queue is now full: a new message is refused, the replay of the first is not.
    assert (await gw.submit({"to": TO, "text": "y"}))[0] == 503
    again_status, again = await gw.submit({"to": TO, "text": "x"}, **{"Idempotency-Key": "k1"})
    assert (again_status, again["id"]) == (200, first["id"])
    conflict_status, conflict = await gw.submit(
        {"to": TO, "text": "z"}, **{"Idempotency-Key": "k1"}
    )
    assert (conflict_status, conflict["error"]["code"]) == (409, "idempotency_conflict")


async def test_backpressure(tmp_path, run_gateway):
    gw = await run_gateway(
        make_config(
            tmp_path,
            "http://127.0.0.1:9/mm7",
            gateway__max_queue_depth=3,
            gateway__data_dir=str(tmp_path),
        )
    )
    for i in range(3):
        assert (await gw.submit({"to": TO, "text": f"{i}"}))[0] == 202
    async with gw.session.post(
        gw.api + "/v1/messages",
        json={"to": TO, "text": "over"},
        headers={"Authorization": f"Bearer {API_KEY}"},
    ) as r:
        assert r.status == 503
        assert int(r.headers["Retry-After"]) > 0
        assert (await r.json())["error"]["code"] == "queue_full"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"to": "2025550101", "text": "x"}, 400, "invalid_number"),
        ({"to": "+15555550100", "text": "x"}, 400, "invalid_number"),
        ({"to": TO}, 400, "empty_message"),
        ({"to": TO, "text": "x", "route": "nowhere"}, 400, "unknown_route"),
        ({"to": TO, "text": "x", "bogus": 1}, 400, "unknown_field"),
        ({"to": [TO] * 101, "text": "x"}, 400, "too_many_recipients"),
        (
            {"to": TO, "media": [{"content_type": "image/jpeg", "data": "!!!"}]},
            400,
            "validation_error",
        ),
        (
            {
                "to": TO,
                "media": [
                    {"content_type": "image/jpeg", "data": b64(b"\xff\xd8\xff" + bytes(7000))}
                ],
            },
            422,
            "corrupt_media",
        ),
        (
            {
                "to": TO,
                "media": [{"content_type": "application/pdf", "data": b64(b"%PDF-1.4 hello")}],
            },
            422,
            "unsupported_media",
        ),
    ],
)
async def test_bad_input_is_rejected_and_stores_nothing(
    tmp_path, mock_mmsc, run_gateway, body, status, code
):
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    got_status, got = await gw.submit(body)
    assert got_status == status, got
    assert got["error"]["code"] == code
    assert await gw.gateway.store.queue_depths() == {}
    assert not any((tmp_path / "media").rglob("*")) if (tmp_path / "media").exists() else True


async def test_malformed_json_and_wrong_key(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    async with gw.session.post(
        gw.api + "/v1/messages",
        data=b"{not json",
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    ) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "malformed_json"
    async with gw.session.post(
        gw.api + "/v1/messages",
        json={"to": TO, "text": "x"},
        headers={"Authorization": "Bearer nope"},
    ) as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
    async with gw.session.get(
        gw.api + "/v1/messages/msg_nope", headers={"Authorization": f"Bearer {API_KEY}"}
    ) as r:
        assert r.status == 404


async def test_multipart_form_submission(tmp_path, mock_mmsc, run_gateway):
    import aiohttp

    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    form = aiohttp.FormData()
    form.add_field("message", '{"to": "%s", "text": "form"}' % TO, content_type="application/json")
    form.add_field("photo", jpeg_bytes(), filename="p.jpg", content_type="image/jpeg")
    async with gw.session.post(
        gw.api + "/v1/messages", data=form, headers={"Authorization": f"Bearer {API_KEY}"}
    ) as r:
        body = await r.json()
        assert r.status == 202, body
    assert [m["content_type"] for m in body["media"]] == [
        "application/smil",
        "text/plain; charset=utf-8",
        "image/jpeg",
    ]
    await gw.wait_status(body["id"], {"submitted", "delivered"})


async def test_readyz_and_metrics(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    _, body = await gw.submit({"to": TO, "text": "x"})
    await gw.wait_status(body["id"], {"submitted", "delivered"})
    async with gw.session.get(gw.ops + "/readyz") as r:
        assert r.status == 200 and (await r.json())["routes"] == {"mock": "closed"}
    async with gw.session.get(gw.ops + "/metrics") as r:
        text = await r.text()
    assert 'mm7gw_messages_accepted_total{route="mock"} 1.0' in text
    assert 'mm7gw_submit_requests_total{mmsc="mock",status_class="success"} 1.0' in text


async def test_oversize_media_under_reject_policy(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc()
    gw = await run_gateway(
        make_config(tmp_path, mock.url, mmsc_media_policy="reject", mmsc_max_message_bytes=4000)
    )
    status, body = await gw.submit(
        {"to": TO, "media": [{"content_type": "image/jpeg", "data": b64(noisy_jpeg())}]}
    )
    assert status == 413 and body["error"]["code"] == "media_too_large"


async def test_oversize_image_is_adapted_to_the_route_limit(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc(max_message_bytes=30_000)
    gw = await run_gateway(make_config(tmp_path, mock.url, mmsc_max_message_bytes=30_000))
    original = noisy_jpeg((900, 700))
    assert len(original) > 30_000
    status, body = await gw.submit(
        {
            "to": TO,
            "text": "fit me",
            "media": [{"content_type": "image/jpeg", "data": b64(original)}],
        }
    )
    assert status == 202, body
    assert body["original_bytes"] > 30_000 >= body["adapted_bytes"]
    await gw.wait_status(body["id"], {"submitted", "delivered"})


async def test_link_fallback_when_route_takes_no_mms(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url, mmsc_mms=False))
    image = jpeg_bytes()
    status, body = await gw.submit(
        {"to": TO, "text": "see", "media": [{"content_type": "image/jpeg", "data": b64(image)}]}
    )
    assert status == 202, body
    assert body["fallback"] == "link" and body["media"] == []
    await gw.wait_status(body["id"], {"submitted", "delivered"})
    record = await gw.gateway.store.get_message(body["id"])
    url = record.text.splitlines()[-1]
    assert "/v1/media/" in url
    async with gw.session.get(url) as r:
        assert r.status == 200 and await r.read() == image
        assert r.headers["Content-Type"] == "image/jpeg"
