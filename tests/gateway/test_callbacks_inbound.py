"""Inbound MMS (DeliverReq): storage, charsets, media dedupe, REST access, signed media URLs."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from gateway.inbound.deliver import decode_text
from gateway.media.links import media_url
from protocol import Address, Attachment, DeliverReq, DeliverRsp, Recipients, decode
from tests.gateway.callback_helpers import (
    SHORT_CODE,
    bearer,
    build_config,
    get_json,
    post_mm7,
    running,
    url_of,
)

FROM = "+821099998888"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
SMIL = b'<smil><body><par><img src="cid:img"/><text src="cid:t1"/></par></body></smil>'
KOREAN = "안녕하세요, 반갑습니다"


def deliver(
    texts: tuple[tuple[str, bytes], ...] = (),
    *,
    transaction_id: str = "dlv-1",
    image: bytes = PNG,
    time_stamp: datetime | None = None,
) -> DeliverReq:
    parts = [Attachment(content_type="application/smil", data=SMIL, content_id="smil")]
    parts += [
        Attachment(content_type=ct, data=data, content_id=f"t{i}")
        for i, (ct, data) in enumerate(texts, 1)
    ]
    parts.append(Attachment(content_type="image/png", data=image, content_id="img"))
    container = Attachment(
        content_type='multipart/related; type="application/smil"; start="<smil>"',
        content_id="mm",
        parts=tuple(parts),
    )
    return DeliverReq(
        transaction_id=transaction_id,
        sender=Address.number(FROM),
        recipients=Recipients(to=(Address.short_code(SHORT_CODE),)),
        subject="photo",
        time_stamp=time_stamp,
        attachments=(container,),
    )


@pytest.mark.parametrize(
    ("charset", "codec"),
    [("ks_c_5601-1987", "cp949"), ("euc-kr", "cp949"), ("KSC5601", "cp949"), ("utf-8", "utf-8")],
)
def test_decode_text_charsets(charset, codec):
    text, used = decode_text(KOREAN.encode(codec), charset)
    assert (text, used) == (KOREAN, codec)


def test_decode_text_without_or_with_unknown_charset():
    assert decode_text(KOREAN.encode("cp949"), None) == (KOREAN, "cp949")
    assert decode_text("héllo".encode(), "x-unknown") == ("héllo", "utf-8")
    assert decode_text(b"\xff\xfe\xfd", None)[1] == "latin-1"


async def test_inbound_with_parts_and_charsets_reaches_webhook_with_working_media(
    tmp_path, mmsc, receiver
):
    config = build_config(tmp_path, mmsc.url, callback_url=receiver.url)
    texts = (
        ("text/plain; charset=ks_c_5601-1987", KOREAN.encode("cp949")),
        ('text/plain; charset="EUC-KR"', "두번째".encode("cp949")),
    )
    async with running(config) as gw, aiohttp.ClientSession() as s:
        status, body, _ = await post_mm7(s, gw, deliver(texts), version="REL-5-MM7-1-2")
        assert status == 200
        answer = decode(body)
        assert isinstance(answer, DeliverRsp)
        assert answer.status_code == 1000
        await receiver.wait_for(lambda events: len(events) == 1)
        event = receiver.events[0]
        assert event["type"] == "message.inbound"
        data = event["data"]
        assert data["from"] == FROM
        assert data["to"] == SHORT_CODE
        assert data["text"] == KOREAN + "\n두번째"
        assert [m["content_type"].split(";")[0] for m in data["media"]] == [
            "application/smil",
            "text/plain",
            "text/plain",
            "image/png",
        ]
        image = data["media"][3]
        assert image["id"] == hashlib.sha256(PNG).hexdigest()
        # The URL is signed for the API listener: fetch it without any API key.
        async with s.get(image["url"]) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "image/png"
            assert await response.read() == PNG
        # The REST view has the same message, with decoded text per part.
        status, listing = await get_json(s, gw, "/v1/inbound")
        assert status == 200
        [item] = listing["data"]
        assert item["id"] == data["id"]
        status, single = await get_json(s, gw, f"/v1/inbound/{data['id']}")
        assert status == 200
        assert [m["text"] for m in single["media"]][1:3] == [KOREAN, "두번째"]
        assert single["media"][1]["charset"] == "cp949"
        assert gw.registry.get_sample_value("mm7gw_inbound_messages_total", {"mmsc": "mock"}) == 1.0


async def test_repeated_deliver_is_stored_once_and_media_is_deduplicated(tmp_path, mmsc, receiver):
    config = build_config(tmp_path, mmsc.url, callback_url=receiver.url)
    async with running(config) as gw, aiohttp.ClientSession() as s:
        first = deliver((("text/plain; charset=utf-8", b"one"),))
        for _ in range(2):  # the MMSC lost our answer and sends the same request again
            status, _, _ = await post_mm7(s, gw, first)
            assert status == 200
        second = deliver((("text/plain; charset=utf-8", b"two"),), transaction_id="dlv-2")
        status, _, _ = await post_mm7(s, gw, second)
        assert status == 200
        await receiver.wait_for(lambda events: len(events) == 2)
        _, listing = await get_json(s, gw, "/v1/inbound")
        assert len(listing["data"]) == 2
        media_files = [p for p in (tmp_path / "media").rglob("*") if p.is_file()]
        # smil + png shared by both, plus the two distinct texts.
        assert len(media_files) == 4
    assert len(receiver.events) == 2


async def test_media_urls_are_signed_and_expire(tmp_path, mmsc):
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        await post_mm7(s, gw, deliver())
        _, listing = await get_json(s, gw, "/v1/inbound")
        url = listing["data"][0]["media"][-1]["url"]
        media_id = urlsplit(url).path.rsplit("/", 1)[1]
        query = parse_qs(urlsplit(url).query)
        base = url_of(gw.listeners.api, f"/v1/media/{media_id}")
        async with s.get(url) as response:
            assert response.status == 200
        tampered = f"{base}?exp={query['exp'][0]}&sig={'0' * 64}"
        async with s.get(tampered) as response:
            assert response.status == 403
            assert (await response.json())["error"]["code"] == "invalid_media_signature"
        expired = media_url(url_of(gw.listeners.api, ""), gw.links.key, media_id, 1)
        async with s.get(expired) as response:
            assert response.status == 403
        async with s.get(base) as response:
            assert response.status == 403
        # A valid signature for an id that is no sha256 is still not found.
        bogus = media_url(
            url_of(gw.listeners.api, ""), gw.links.key, "not-a-sha256", 2**40
        )
        async with s.get(bogus) as response:
            assert response.status == 404


async def test_inbound_api_needs_a_key_and_404s(tmp_path, mmsc):
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        async with s.get(url_of(gw.listeners.api, "/v1/inbound")) as response:
            assert response.status == 401
        status, _ = await get_json(s, gw, "/v1/inbound/inb_nope")
        assert status == 404
        async with s.get(
            url_of(gw.listeners.api, "/v1/inbound?limit=0"), headers=bearer()
        ) as response:
            assert response.status == 400


async def test_concurrent_inbound_with_the_same_media_all_succeed(tmp_path, mmsc):
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        requests = [
            deliver((("text/plain; charset=utf-8", f"n{i}".encode()),), transaction_id=f"c{i}")
            for i in range(20)
        ]
        results = await asyncio.gather(*(post_mm7(s, gw, r) for r in requests))
        assert [status for status, _, _ in results] == [200] * 20
        _, listing = await get_json(s, gw, "/v1/inbound?limit=100")
        assert len(listing["data"]) == 20


@pytest.mark.parametrize(
    ("declared", "served"),
    [
        ("image/jpeg", "image/jpeg"),
        ("text/plain; charset=utf-8", "text/plain; charset=utf-8"),
        ("audio/amr", "audio/amr"),
        ("text/html", "application/octet-stream"),
        ("image/svg+xml", "application/octet-stream"),
        ("application/javascript", "application/octet-stream"),
        (None, "application/octet-stream"),
    ],
)
def test_stored_media_is_served_with_a_safe_type(declared, served):
    from gateway.api.inbound import servable_type

    assert servable_type(declared) == served


async def test_a_resend_with_a_new_transaction_id_is_stored_once(tmp_path, mmsc, receiver):
    """Same MMSC TimeStamp, sender, recipients and content: the same message, resent."""
    config = build_config(tmp_path, mmsc.url, callback_url=receiver.url)
    sent = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    async with running(config) as gw, aiohttp.ClientSession() as s:
        texts = (("text/plain; charset=utf-8", b"hello"),)
        for tid in ("dlv-a", "dlv-b"):
            status, _, _ = await post_mm7(
                s, gw, deliver(texts, transaction_id=tid, time_stamp=sent)
            )
            assert status == 200
        # Without a TimeStamp, a new TransactionID is a new message.
        for tid in ("dlv-c", "dlv-d"):
            status, _, _ = await post_mm7(s, gw, deliver(texts, transaction_id=tid))
            assert status == 200
        _, listing = await get_json(s, gw, "/v1/inbound")
        assert len(listing["data"]) == 3
