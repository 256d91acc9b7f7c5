"""Callbacks stay within their route: one carrier's credentials never change another's messages.

Two MMSCs may hand out the same MessageID (both tiny MMSCs here count from ``mid-1``).
A report is matched only against messages sent over the route it authenticated as; one
for another route's MessageID is stored ``unmatched``. A bare ``/mm7`` request is
attributed by the credentials or address it presents, and refused when that fits several
routes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from lxml import etree

from gateway.config.model import GatewayConfig
from gateway.config.values import ENVIRON_CONTEXT_KEY
from gateway.store import NewMessage, SqliteStore
from gateway.store.records import ReportRow
from tests.gateway.callback_helpers import (
    TinyMmsc,
    basic,
    delivery_report,
    message_state,
    post_mm7,
    raw_config,
    running,
    submitted,
)

TO = "+821012345678"
A_CREDENTIALS = basic("carrier-a", "secret-a")
B_CREDENTIALS = basic("carrier-b", "secret-b")


def two_routes(data_dir: Path, url_a: str, url_b: str, **b_overrides: Any) -> GatewayConfig:
    """Route ``mock`` (default, credentials ``carrier-a``) and route ``b`` (``carrier-b``)."""
    data = raw_config(
        data_dir,
        url_a,
        mmsc={"inbound_username": "carrier-a", "inbound_password": "secret-a"},
    )
    data["mmsc"].append(
        {
            "name": "b",
            "url": url_b,
            "sender": "1234",
            "tps": 0.0,
            "inbound_username": "carrier-b",
            "inbound_password": "secret-b",
            **b_overrides,
        }
    )
    return GatewayConfig.model_validate(data, context={ENVIRON_CONTEXT_KEY: {}})


@pytest.fixture
async def carriers():
    a, b = TinyMmsc(), TinyMmsc()
    await a.start()
    await b.start()
    yield a, b
    await a.stop()
    await b.stop()


def fault_code(body: bytes) -> str | None:
    return etree.fromstring(body).findtext(".//{*}StatusCode")


async def test_a_report_from_another_route_is_unmatched(tmp_path, carriers):
    a, b = carriers
    async with (
        running(two_routes(tmp_path, a.url, b.url)) as gw,
        aiohttp.ClientSession() as s,
    ):
        on_b, mid = await submitted(s, gw, TO, route="b")
        assert mid == "mid-1"
        # Carrier A reports "Retrieved" for B's MessageID (bare /mm7 and A's own path).
        for path in ("/mm7", "/mm7/mock"):
            report = delivery_report(mid, TO, "Retrieved", transaction_id=f"dr{path}")
            status, _, _ = await post_mm7(s, gw, report, headers=A_CREDENTIALS, path=path)
            assert status == 200
        assert await message_state(s, gw, on_b) == "submitted"
        assert await gw.store.report_counts() == {"unmatched": 2}
        # From B it applies.
        status, _, _ = await post_mm7(
            s, gw, delivery_report(mid, TO, "Retrieved"), headers=B_CREDENTIALS
        )
        assert status == 200
        assert await message_state(s, gw, on_b) == "delivered"


async def test_colliding_message_ids_change_only_their_own_route(tmp_path, carriers):
    a, b = carriers
    async with (
        running(two_routes(tmp_path, a.url, b.url)) as gw,
        aiohttp.ClientSession() as s,
    ):
        on_a, mid_a = await submitted(s, gw, TO)
        on_b, mid_b = await submitted(s, gw, TO, route="b")
        assert mid_a == mid_b == "mid-1"  # same MessageID, same number, two carriers
        status, _, _ = await post_mm7(
            s, gw, delivery_report(mid_b, TO, "Expired"), headers=B_CREDENTIALS
        )
        assert status == 200
        assert await message_state(s, gw, on_b) == "expired"
        assert await message_state(s, gw, on_a) == "submitted"


async def test_an_early_report_from_another_route_is_not_applied_at_submit(tmp_path, carriers):
    """A report that arrives before any batch has its MessageID stays unmatched when
    another route's batch later gets that MessageID."""
    a, b = carriers
    async with (
        running(two_routes(tmp_path, a.url, b.url)) as gw,
        aiohttp.ClientSession() as s,
    ):
        status, _, _ = await post_mm7(
            s, gw, delivery_report("mid-1", TO, "Retrieved"), headers=A_CREDENTIALS
        )
        assert status == 200
        on_b, mid = await submitted(s, gw, TO, route="b")
        assert mid == "mid-1"
        assert await message_state(s, gw, on_b) == "submitted"
        assert await gw.store.report_counts() == {"unmatched": 1}


async def test_store_matches_reports_within_their_route(tmp_path):
    store = SqliteStore(tmp_path / "db.sqlite3")
    await store.open()
    try:
        await store.create_message(
            NewMessage(
                id="msg_1", api_key="app", route="r1", recipients=(TO,), recipient_routes=("r1",),
                sender="1234", subject=None, text="t", parts=(), batch_sizes={"r1": 1},
                created_at=1.0, send_at=1.0, expires_at=10_000.0,
            )
        )  # fmt: skip
        [batch] = await store.claim_due("r1", 2.0, 1)
        await store.mark_submitted(batch.id, "mid-x", 3.0)

        def row(mmsc: str, key: str) -> ReportRow:
            return ReportRow(
                kind="delivery", mmsc=mmsc, dedupe_key=key, mm7_message_id="mid-x",
                recipient=TO, sender="1234", mm_status="Retrieved", mm_status_extension=None,
                status_text=None, mapped_state="delivered", report_at=4.0, received_at=4.0,
                transaction_id="t",
            )  # fmt: skip

        assert (await store.store_report(row("r2", "k1"))).outcome == "unmatched"
        record = await store.get_message("msg_1")
        assert record is not None and record.status == "submitted"
        assert (await store.store_report(row("r1", "k2"))).outcome == "applied"
    finally:
        await store.close()


# -- which route a bare /mm7 request is -------------------------------------------------------------


async def test_bare_mm7_is_attributed_by_credentials_never_by_order(tmp_path, carriers):
    a, b = carriers
    config = two_routes(tmp_path, a.url, b.url, inbound_username=None, inbound_password=None)
    async with running(config) as gw, aiohttp.ClientSession() as s:
        on_b, mid = await submitted(s, gw, TO, route="b")
        # Wrong credentials are refused even though route b expects none.
        status, body, headers = await post_mm7(
            s, gw, delivery_report(mid, TO, "Retrieved"), headers=basic("carrier-a", "nope")
        )
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic ")
        assert fault_code(body) == "4001"
        # No credentials: the one route that expects none.
        status, _, _ = await post_mm7(s, gw, delivery_report(mid, TO, "Retrieved"), headers={})
        assert status == 200
        assert await message_state(s, gw, on_b) == "delivered"


async def test_bare_mm7_that_fits_several_routes_is_refused(tmp_path, carriers):
    a, b = carriers
    data = raw_config(tmp_path, a.url, mmsc={"inbound_username": None, "inbound_password": None})
    data["mmsc"].append({"name": "b", "url": b.url, "tps": 0.0})
    config = GatewayConfig.model_validate(data, context={ENVIRON_CONTEXT_KEY: {}})
    async with running(config) as gw, aiohttp.ClientSession() as s:
        on_b, mid = await submitted(s, gw, TO, route="b")
        report = delivery_report(mid, TO, "Retrieved")
        status, body, _ = await post_mm7(s, gw, report, headers={})
        assert status == 403
        assert fault_code(body) == "4001"
        assert b"several routes" in body
        assert await gw.store.report_counts() == {}
        # Naming the route works.
        status, _, _ = await post_mm7(s, gw, report, headers={}, path="/mm7/b")
        assert status == 200
        assert await message_state(s, gw, on_b) == "delivered"


async def test_bare_mm7_is_attributed_by_source_address(tmp_path, carriers):
    a, b = carriers
    data = raw_config(
        tmp_path,
        a.url,
        mmsc={
            "inbound_username": None,
            "inbound_password": None,
            "inbound_allow_ips": ["10.0.0.0/8"],
        },
    )
    data["mmsc"].append(
        {"name": "b", "url": b.url, "tps": 0.0, "inbound_allow_ips": ["127.0.0.0/8"]}
    )
    config = GatewayConfig.model_validate(data, context={ENVIRON_CONTEXT_KEY: {}})
    async with running(config) as gw, aiohttp.ClientSession() as s:
        on_b, mid = await submitted(s, gw, TO, route="b")
        status, _, _ = await post_mm7(s, gw, delivery_report(mid, TO, "Retrieved"), headers={})
        assert status == 200
        assert await message_state(s, gw, on_b) == "delivered"
        # The route whose allow-list does not admit us is refused by name.
        status, body, _ = await post_mm7(
            s, gw, delivery_report(mid, TO, "Read"), headers={}, path="/mm7/mock"
        )
        assert status == 403
        assert fault_code(body) == "4001"
