"""PUT /v1/messages/{id}: new content while queued, MM7 ReplaceReq once submitted."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from protocol import ReplaceReq, SubmitReq, decode
from tests.gateway.support import API_KEY, b64, make_config, noisy_jpeg

pytestmark = pytest.mark.asyncio

TO = "+12025550101"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def put(gw, message_id: str, body: dict) -> tuple[int, dict]:
    async with gw.session.put(f"{gw.api}/v1/messages/{message_id}", json=body, headers=AUTH) as r:
        return r.status, await r.json()


def recorded(directory: Path, cls: type) -> list:
    out = []
    for path in sorted(directory.glob("*-in-request.http")):
        head, _, body = path.read_bytes().partition(b"\r\n\r\n")
        content_type = next(
            line.split(":", 1)[1].strip()
            for line in head.decode("latin-1").split("\r\n")
            if line.lower().startswith("content-type:")
        )
        message = decode(body, content_type)
        if isinstance(message, cls):
            out.append(message)
    return out


def texts(message) -> list[str]:
    leaves = [p for a in message.attachments for p in (a.parts or (a,))]
    return [p.data.decode() for p in leaves if p.content_type.startswith("text/plain")]


async def test_a_queued_message_gets_the_new_content(tmp_path, mock_mmsc, run_gateway):
    record = tmp_path / "record"
    mock = await mock_mmsc(record=record)
    gw = await run_gateway(make_config(tmp_path / "data", mock.url))
    later = datetime.fromtimestamp(time.time() + 1.0, UTC).isoformat()
    _, body = await gw.submit({"to": TO, "text": "old", "send_at": later, "delivery_report": False})
    image = noisy_jpeg((80, 60))
    status, replaced = await put(
        gw,
        body["id"],
        {
            "text": "new",
            "subject": "S2",
            "media": [{"content_type": "image/jpeg", "data": b64(image)}],
        },
    )
    assert status == 200, replaced
    assert replaced["subject"] == "S2" and replaced["status"] == "queued"
    assert any(m["content_type"] == "image/jpeg" for m in replaced["media"])
    await gw.wait_status(body["id"], {"submitted"})
    (sent,) = recorded(record, SubmitReq)
    assert sent.subject == "S2" and texts(sent) == ["new"]
    assert recorded(record, ReplaceReq) == []


async def test_a_submitted_message_is_replaced_at_the_mmsc(tmp_path, mock_mmsc, run_gateway):
    record = tmp_path / "record"
    mock = await mock_mmsc(record=record, dr_delay=30)
    gw = await run_gateway(make_config(tmp_path / "data", mock.url))
    _, body = await gw.submit({"to": TO, "text": "first"})
    submitted = await gw.wait_status(body["id"], {"submitted"})
    status, replaced = await put(gw, body["id"], {"text": "second"})
    assert status == 200, replaced
    (replace,) = recorded(record, ReplaceReq)
    assert replace.message_id == submitted["mm7_message_id"]
    assert texts(replace) == ["second"]
    assert (await mock.stats())["requests"]["ReplaceReq"] == {"1000": 1}
    stored = await gw.gateway.store.get_message(body["id"])
    assert stored.text == "second"


async def test_refusals_and_final_messages(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc(dr_delay=30)
    gw = await run_gateway(make_config(tmp_path, mock.url))
    _, body = await gw.submit({"to": TO, "text": "first", "delivery_report": False})
    await gw.wait_status(body["id"], {"submitted"})
    await mock.configure(fail_rate="2005=1.0")
    status, error = await put(gw, body["id"], {"text": "second"})
    assert (status, error["error"]["code"]) == (409, "replace_refused"), error
    assert (await gw.gateway.store.get_message(body["id"])).text == "first"
    await mock.configure(fail_rate="")
    # Canceled: nothing left to replace.
    async with gw.session.delete(f"{gw.api}/v1/messages/{body['id']}", headers=AUTH) as r:
        assert r.status == 200
    status, error = await put(gw, body["id"], {"text": "third"})
    assert (status, error["error"]["code"]) == (409, "message_final")
    # Validation: only content may change; another key's message is not found.
    status, error = await put(gw, body["id"], {"to": "+12025550102"})
    assert (status, error["error"]["code"]) == (400, "unknown_field")
    status, error = await put(gw, body["id"], {})
    assert (status, error["error"]["code"]) == (400, "empty_message")
    status, error = await put(gw, "msg_nope", {"text": "x"})
    assert status == 404


async def test_in_flight_is_409_with_retry_after(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc(latency_ms=400.0, dr_delay=30)
    gw = await run_gateway(make_config(tmp_path, mock.url))
    _, body = await gw.submit({"to": TO, "text": "x", "delivery_report": False})
    async with asyncio.timeout(5):
        while not gw.gateway.workers["mock"].in_flight:
            await asyncio.sleep(0.01)
    async with gw.session.put(
        f"{gw.api}/v1/messages/{body['id']}", json={"text": "y"}, headers=AUTH
    ) as r:
        assert r.status == 409
        assert int(r.headers["Retry-After"]) >= 1
        assert (await r.json())["error"]["code"] == "message_in_flight"
