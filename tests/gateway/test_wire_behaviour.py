"""What the MMSC receives, read from the mock's --record files: framing and content."""

from __future__ import annotations

import asyncio
import io
import json
import random
from pathlib import Path

import pytest
from PIL import Image

from gateway.outbound.content_fit import LINK_RENDITION_BYTES, LINK_RENDITION_PIXELS
from protocol import SubmitReq, decode
from tests.gateway.support import API_KEY, b64, make_config, noisy_jpeg

pytestmark = pytest.mark.asyncio

TO = "+12025550101"


def recorded_submits(directory: Path) -> list[tuple[dict[str, str], bytes]]:
    """(headers, body) of every recorded request the mock got, in order."""
    out = []
    for path in sorted(directory.glob("*-in-request.http")):
        raw = path.read_bytes()
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[1:]
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        out.append((headers, body))
    return out


async def wait_for(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_submit_req_has_a_content_length_and_is_not_chunked(tmp_path, mock_mmsc, run_gateway):
    record = tmp_path / "record"
    mock = await mock_mmsc(record=record)
    gw = await run_gateway(make_config(tmp_path / "data", mock.url))
    image = noisy_jpeg((200, 150))
    status, body = await gw.submit(
        {"to": TO, "text": "hi", "media": [{"content_type": "image/jpeg", "data": b64(image)}]}
    )
    assert status == 202, body
    await gw.wait_status(body["id"], {"submitted", "delivered"})
    await wait_for(lambda: bool(recorded_submits(record)))
    headers, raw = recorded_submits(record)[0]
    # Several MMSCs reject chunked bodies: we always send the length.
    assert int(headers["content-length"]) == len(raw)
    assert "chunked" not in headers.get("transfer-encoding", "")
    assert headers["content-type"].startswith("multipart/related")
    message = decode(raw, headers["content-type"])
    assert isinstance(message, SubmitReq)
    assert [a.value for a in message.recipients.all()] == [TO]


async def test_a_route_without_mms_sends_text_only_with_the_link(tmp_path, mock_mmsc, run_gateway):
    record = tmp_path / "record"
    mock = await mock_mmsc(record=record)
    gw = await run_gateway(make_config(tmp_path / "data", mock.url, mmsc_mms=False))
    image = noisy_jpeg((120, 90))
    status, body = await gw.submit(
        {"to": TO, "text": "see", "media": [{"content_type": "image/jpeg", "data": b64(image)}]}
    )
    assert status == 202, body
    await gw.wait_status(body["id"], {"submitted", "delivered"})
    await wait_for(lambda: bool(recorded_submits(record)))
    headers, raw = recorded_submits(record)[0]
    message = decode(raw, headers["content-type"])
    assert isinstance(message, SubmitReq)
    leaves = [a for a in message.attachments if not a.parts] + [
        p for a in message.attachments for p in a.parts
    ]
    assert [a.content_type.split(";")[0] for a in leaves] == ["text/plain"]
    text = leaves[0].data.decode()
    assert text.startswith("see\n") and "/v1/media/" in text
    assert image not in raw


async def test_media_that_cannot_fit_falls_back_to_a_link_under_policy_adapt(
    tmp_path, mock_mmsc, run_gateway
):
    """A budget no image can meet (8 KB for the whole body): adapt gives up, the link goes."""
    record = tmp_path / "record"
    mock = await mock_mmsc(record=record)
    gw = await run_gateway(make_config(tmp_path / "data", mock.url, mmsc_max_message_bytes=2600))
    image = noisy_jpeg((400, 300))
    status, body = await gw.submit(
        {"to": TO, "text": "big", "media": [{"content_type": "image/jpeg", "data": b64(image)}]}
    )
    assert status == 202, body
    assert body["fallback"] == "link"
    await gw.wait_status(body["id"], {"submitted", "delivered"})
    await wait_for(lambda: bool(recorded_submits(record)))
    _, raw = recorded_submits(record)[0]
    assert len(raw) <= 2600
    assert b"/v1/media/" in raw


async def test_policy_link_links_what_does_not_fit_and_sends_what_does(
    tmp_path, mock_mmsc, run_gateway
):
    mock = await mock_mmsc()
    gw = await run_gateway(
        make_config(tmp_path, mock.url, mmsc_media_policy="link", mmsc_max_message_bytes=30_000)
    )
    big = noisy_jpeg((400, 300))
    assert len(big) > 30_000
    status, body = await gw.submit(
        {"to": TO, "text": "x", "media": [{"content_type": "image/jpeg", "data": b64(big)}]}
    )
    assert status == 202, body
    # Not adapted under "link": the original is kept and linked.
    assert body["fallback"] == "link" and body["media"] == []
    small = noisy_jpeg((60, 40))
    status, body = await gw.submit(
        {"to": TO, "text": "x", "media": [{"content_type": "image/jpeg", "data": b64(small)}]}
    )
    assert status == 202, body
    assert body["fallback"] is None
    assert [m["content_type"].split(";")[0] for m in body["media"]].count("image/jpeg") == 1


async def test_dropped_connections_are_retried(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc(drop_rate=1.0)
    gw = await run_gateway(make_config(tmp_path, mock.url))
    status, body = await gw.submit({"to": TO, "text": "x", "delivery_report": False})
    assert status == 202
    await asyncio.sleep(0.3)
    resource = await gw.get(body["id"])
    assert resource["status"] == "queued" and resource["attempts"] >= 2
    assert resource["last_error"]
    await mock.configure(drop_rate=0.0)
    await gw.wait_status(body["id"], {"submitted"})


async def test_linked_media_is_served_without_metadata(tmp_path, mock_mmsc, run_gateway):
    """A link hands the media to anyone with the URL: GPS and the rest are stripped first."""
    from tests.gateway import media_images

    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url, mmsc_mms=False))
    tagged = media_images.tagged_jpeg(media_images.photo(320, 240))
    assert media_images.metadata_left(tagged), "the input must carry metadata"
    status, body = await gw.submit(
        {"to": TO, "text": "see", "media": [{"content_type": "image/jpeg", "data": b64(tagged)}]}
    )
    assert status == 202, body
    record = await gw.gateway.store.get_message(body["id"])
    url = record.text.splitlines()[-1]
    async with gw.session.get(url) as r:
        assert r.status == 200
        served = await r.read()
    assert media_images.metadata_left(served) == []
    metrics = gw.gateway.metrics.registry
    assert (
        metrics.get_sample_value("mm7gw_media_adaptations_total", {"result": "link_fallback"}) == 1
    )


async def test_refused_media_is_counted(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    status, body = await gw.submit(
        {"to": TO, "media": [{"content_type": "application/pdf", "data": b64(b"%PDF-1.4 x")}]}
    )
    assert (status, body["error"]["code"]) == (422, "unsupported_media")
    metrics = gw.gateway.metrics.registry
    assert metrics.get_sample_value("mm7gw_media_adaptations_total", {"result": "rejected"}) == 1


async def test_a_link_fallback_serves_a_handset_sized_rendition(tmp_path, mock_mmsc, run_gateway):
    # The link opens on a phone: not a 12-megapixel original, nor megabytes of noise.
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url, mmsc_mms=False))
    rng = random.Random(5)
    noisy = Image.frombytes("RGB", (1200, 900), rng.randbytes(1200 * 900 * 3))
    huge = Image.linear_gradient("L").resize((4000, 3000)).convert("RGB")
    for image, quality in ((huge, 90), (noisy, 95)):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        original = buffer.getvalue()
        payload = {"to": TO, "text": "see", "media": [{"data": b64(original)}]}
        # A file object: aiohttp warns about (and the suite refuses) megabytes of raw bytes.
        async with gw.session.post(
            gw.api + "/v1/messages",
            data=io.BytesIO(json.dumps(payload).encode()),
            headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        ) as response:
            status, body = response.status, await response.json()
        assert status == 202, body
        assert body["fallback"] == "link"
        record = await gw.gateway.store.get_message(body["id"])
        async with gw.session.get(record.text.splitlines()[-1]) as r:
            assert r.status == 200
            served = await r.read()
        assert served != original
        rendition = Image.open(io.BytesIO(served))
        assert rendition.format == "JPEG"
        assert rendition.width * rendition.height <= LINK_RENDITION_PIXELS
        assert len(served) <= LINK_RENDITION_BYTES
        # Scaled, not cropped: the aspect ratio stays.
        assert abs(rendition.width / rendition.height - image.width / image.height) < 0.01
    assert len(original) > LINK_RENDITION_BYTES  # the noisy one really needed shrinking
