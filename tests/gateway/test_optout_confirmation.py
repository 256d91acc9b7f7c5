"""The STOP confirmation is part of the same durable step as the STOP itself.

The reply message is created in the transaction that stores the inbound message and its
suppression change: a crash after that commit (before or after the DeliverRsp) cannot
lose it, and the DeliverReq the MMSC resends is stored once, so it gets one reply.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from gateway.errors import StoreError
from gateway.store import NewMessage, SqliteStore
from gateway.store.records import InboundRow
from tests.gateway.callback_helpers import SHORT_CODE, TinyMmsc, build_config, post_mm7, running
from tests.gateway.test_callbacks_optout import USER, text_mms

CONFIRMATION = "You are unsubscribed."


def inbound_row(row_id: str) -> InboundRow:
    return InboundRow(
        id=row_id, mmsc="r1", dedupe_key="same-deliver-req", api_key=None, sender=USER,
        recipient=SHORT_CODE, recipients=(SHORT_CODE,), subject=None, text="STOP",
        linked_id=None, transaction_id="t", optout="stop", sent_at=None, received_at=10.0,
        parts=(),
    )  # fmt: skip


def reply(message_id: str) -> NewMessage:
    return NewMessage(
        id=message_id, api_key="k", route="r1", recipients=(USER,), recipient_routes=("r1",),
        sender=SHORT_CODE, subject=None, text=CONFIRMATION, parts=(), batch_sizes={"r1": 1},
        created_at=10.0, send_at=10.0, expires_at=1000.0, delivery_report=False,
    )  # fmt: skip


async def test_store_creates_the_reply_with_the_inbound_message_once(tmp_path):
    store = SqliteStore(tmp_path / "db.sqlite3")
    await store.open()
    try:
        assert await store.store_inbound(inbound_row("inb_1"), None, reply=reply("msg_1")) == (
            "inb_1",
            True,
        )
        record = await store.get_message("msg_1")
        assert record is not None and record.text == CONFIRMATION
        assert record.recipients[0].status == "queued"
        assert await store.suppressed_numbers([(USER, SHORT_CODE)]) == [USER]
        # The MMSC resends the DeliverReq (our answer was lost): no second reply.
        again = await store.store_inbound(inbound_row("inb_2"), None, reply=reply("msg_2"))
        assert again == ("inb_1", False)
        assert await store.get_message("msg_2") is None
        assert await store.queue_depths() == {"r1": 1}
    finally:
        await store.close()


def confirmations(mmsc: TinyMmsc) -> list[Any]:
    return [s for s in mmsc.submits if any(a.data == CONFIRMATION.encode() for a in s.attachments)]


async def _wait_confirmations(mmsc: TinyMmsc, count: int) -> None:
    async with asyncio.timeout(5.0):
        while len(confirmations(mmsc)) < count:
            await asyncio.sleep(0.02)


async def test_crash_right_after_the_stop_commits_loses_no_confirmation(tmp_path, mmsc):
    config = build_config(tmp_path, mmsc.url, optout={"confirmation_text": CONFIRMATION})
    stop = text_mms("STOP", sender=USER.lstrip("+"), tid="stop-1")
    async with running(config) as gw, aiohttp.ClientSession() as s:
        commit = gw.store.store_inbound

        async def commit_then_die(*args: Any, **kwargs: Any) -> tuple[str, bool]:
            await commit(*args, **kwargs)
            # The process dies here: the commit is durable, nothing after it runs and the
            # MMSC gets no DeliverRsp 1000.
            raise StoreError("killed after the commit")

        gw.store.store_inbound = commit_then_die  # type: ignore[method-assign]
        status, _, _ = await post_mm7(s, gw, stop)
        assert status == 500  # a 4006 Fault: the MMSC will resend
        gw.store.store_inbound = commit  # type: ignore[method-assign]
    # Restarted on the same data; the MMSC resends the DeliverReq, twice.
    async with running(config) as gw, aiohttp.ClientSession() as s:
        for _ in range(2):
            status, _, _ = await post_mm7(s, gw, stop)
            assert status == 200
        await _wait_confirmations(mmsc, 1)
        reply_req = confirmations(mmsc)[0]
        assert [a.value for a in reply_req.recipients.all()] == [USER]
        # Settle: nothing else is queued, so a second confirmation would be here by now.
        await asyncio.sleep(0.3)
        assert len(confirmations(mmsc)) == 1
        assert len(mmsc.submits) == 1
