"""Opt-out: STOP/START keywords in inbound MMS and the 403 on later submissions."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.inbound.keywords import OptOutPolicy, normalise_keyword
from protocol import Address, Attachment, DeliverReq, Recipients
from tests.gateway.callback_helpers import (
    SHORT_CODE,
    TinyMmsc,
    bearer,
    build_config,
    get_json,
    post_mm7,
    running,
    send_message,
    url_of,
)

USER = "+821055556666"


def text_mms(text: str, *, sender: str = USER, to: str = SHORT_CODE, tid: str = "t") -> DeliverReq:
    return DeliverReq(
        transaction_id=tid,
        sender=Address.number(sender),
        recipients=Recipients(to=(Address.short_code(to),)),
        attachments=(
            Attachment(
                content_type="text/plain; charset=utf-8", data=text.encode(), content_id="t"
            ),
        ),
    )


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("STOP", "stop"),
        (" stop ", "stop"),
        ("Stop All", "stop"),
        ("unsubscribe.", "stop"),
        ("quit", "stop"),
        ("START", "start"),
        ("un stop", "start"),
        ("stop sending me this", None),
        ("", None),
        (None, None),
    ],
)
def test_keyword_classification(text, action):
    assert OptOutPolicy.build(True, None, None).classify(text) == action


def test_configured_keywords_and_disabled_policy():
    policy = OptOutPolicy.build(True, ["ARRET"], ["REPRISE"])
    assert policy.classify("arret") == "stop"
    assert policy.classify("stop") is None
    assert OptOutPolicy.build(False, None, None).classify("STOP") is None
    assert normalise_keyword(" s t o p! ") == "STOP"


async def test_opt_out_and_opt_in_round_trip(tmp_path, mmsc):
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        status, _ = await send_message(s, gw, USER)
        assert status == 202
        status, _, _ = await post_mm7(s, gw, text_mms(" Stop "))
        assert status == 200
        _, listing = await get_json(s, gw, "/v1/inbound")
        assert listing["data"][0]["optout"] == "stop"
        # From the same short code (explicitly, or as the route's default sender): refused.
        for status, body in (await send_message(s, gw, USER), await _send_without_sender(s, gw)):
            assert status == 403, body
            assert body["error"]["code"] == "recipient_opted_out"
            assert body["error"]["field"] == "to"
        # Another sender, or another number, is not affected.
        status, _ = await send_message(s, gw, USER, **{"from": "5678"})
        assert status == 202
        status, _ = await send_message(s, gw, "+821077778888")
        assert status == 202
        # A list with one opted-out number: only that number is refused (DESIGN §12).
        status, body = await send_message(s, gw, [USER, "+821077778888"])
        assert status == 202, body
        refused, accepted = body["recipients"]
        assert refused["status"] == "rejected"
        assert refused["error"].startswith("recipient_opted_out:")
        assert accepted["status"] == "queued" and accepted["error"] is None
        # START lifts it (the number may come without '+').
        status, _, _ = await post_mm7(s, gw, text_mms("start", sender=USER.lstrip("+"), tid="t2"))
        assert status == 200
        status, _ = await send_message(s, gw, USER)
        assert status == 202


async def test_stop_to_another_short_code_does_not_block_ours(tmp_path, mmsc):
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        await post_mm7(s, gw, text_mms("STOP", to="9999"))
        status, _ = await send_message(s, gw, USER)
        assert status == 202


async def test_opt_out_disabled(tmp_path, mmsc):
    config = build_config(tmp_path, mmsc.url, optout={"enabled": False})
    async with running(config) as gw, aiohttp.ClientSession() as s:
        await post_mm7(s, gw, text_mms("STOP"))
        status, _ = await send_message(s, gw, USER)
        assert status == 202


async def _send_without_sender(s, gw):
    async with s.post(
        url_of(gw.listeners.api, "/v1/messages"), json={"to": USER, "text": "x"}, headers=bearer()
    ) as response:
        return response.status, await response.json()


async def _wait_submits(mmsc: TinyMmsc, count: int, timeout: float = 5.0) -> None:
    import asyncio

    async with asyncio.timeout(timeout):
        while len(mmsc.submits) < count:
            await asyncio.sleep(0.02)


async def test_confirmation_replies_to_stop_and_start(tmp_path, mmsc):
    config = build_config(
        tmp_path,
        mmsc.url,
        optout={
            "confirmation_text": "You are unsubscribed.",
            "start_confirmation_text": "Welcome back.",
        },
    )
    async with running(config) as gw, aiohttp.ClientSession() as s:
        status, _, _ = await post_mm7(s, gw, text_mms("STOP", sender=USER.lstrip("+")))
        assert status == 200
        await _wait_submits(mmsc, 1)
        reply = mmsc.submits[0]
        # Back to the number (normalised to E.164), from the short code the STOP went to,
        # even though that pair is now suppressed.
        assert [a.value for a in reply.recipients.all()] == [USER]
        assert reply.sender_identification is not None
        assert reply.sender_identification.sender_address is not None
        assert reply.sender_identification.sender_address.value == SHORT_CODE
        texts = [
            a.data.decode() for a in reply.attachments if a.content_type.startswith("text/plain")
        ]
        assert texts == ["You are unsubscribed."]
        status, body = await send_message(s, gw, USER)
        assert status == 403, body
        # A repeated DeliverReq (same transaction, same content) is not confirmed twice.
        status, _, _ = await post_mm7(s, gw, text_mms("STOP", sender=USER.lstrip("+")))
        assert status == 200
        status, _, _ = await post_mm7(s, gw, text_mms("start", tid="t2"))
        assert status == 200
        await _wait_submits(mmsc, 2)
        texts = [
            a.data.decode()
            for a in mmsc.submits[1].attachments
            if a.content_type.startswith("text/plain")
        ]
        assert texts == ["Welcome back."]
        assert len(mmsc.submits) == 2


async def test_no_confirmation_unless_configured(tmp_path, mmsc):
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        status, _, _ = await post_mm7(s, gw, text_mms("STOP"))
        assert status == 200
        status, _ = await send_message(s, gw, "+821077778888")
        assert status == 202
        await _wait_submits(mmsc, 1)
        assert [a.value for a in mmsc.submits[0].recipients.all()] == ["+821077778888"]


async def test_inbound_mms_and_opt_outs_are_logged_at_info(tmp_path, mmsc, capsys):
    # The default level is info: both lines must show there (numbers are masked by the
    # daemon's log setup, tested in test_log_setup.py; this in-process gateway has none).
    async with running(build_config(tmp_path, mmsc.url)) as gw, aiohttp.ClientSession() as s:
        capsys.readouterr()
        status, _, _ = await post_mm7(s, gw, text_mms("hello there", tid="t1"))
        assert status == 200
        status, _, _ = await post_mm7(s, gw, text_mms("STOP", tid="t2"))
        assert status == 200
        status, _, _ = await post_mm7(s, gw, text_mms("START", tid="t3"))
        assert status == 200
    lines = capsys.readouterr().out.splitlines()
    received = [line for line in lines if "inbound MMS received" in line]
    assert len(received) == 3
    assert all("[info" in line for line in received)
    applied = [line for line in lines if "opt-out keyword applied" in line]
    assert [("keyword=stop" in line, "keyword=start" in line) for line in applied] == [
        (True, False),
        (False, True),
    ]
    assert all("[info" in line for line in applied)
