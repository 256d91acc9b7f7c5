"""Operator console over real loopback HTTP: login, sessions, CSRF, every page and action,
against a gateway with the real mock MMSC (tests/gateway/console_support.py)."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs

from protocol import decode
from protocol.capture import split_http_message
from tests.gateway.callback_helpers import API_KEY
from tests.gateway.console_support import (
    ADMIN_KEY,
    CLIENT_REF,
    TO,
    console_scenario,
    hidden_csrf,
    log_in,
    operator,
    page_csrf,
)
from tests.gateway.support import noisy_jpeg

PAGES = [
    "/console/",
    "/console/messages",
    "/console/inbound",
    "/console/dead-letters",
    "/console/subscribers",
    "/console/send",
]


@pytest.fixture
async def scenario(tmp_path):
    async with console_scenario(tmp_path) as running:
        yield running


async def test_pages_redirect_to_login_without_a_session(scenario):
    async with operator() as s:
        for path in [*PAGES, f"/console/messages/{scenario.message_id}"]:
            async with s.get(scenario.url(path), allow_redirects=False) as r:
                assert r.status == 303, path
                assert r.headers["Location"] == "/console/login"


async def test_login_sets_a_strict_httponly_session_cookie_and_logout_ends_it(scenario):
    async with operator() as s:
        response = await log_in(s, scenario.api)
        assert response.status == 303
        assert response.headers["Location"] == "/console/"
        cookie = next(c for c in response.headers.getall("Set-Cookie") if c.startswith("mm7gw_console="))
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Max-Age=" in cookie
        assert "Secure" not in cookie  # plain HTTP here; set under TLS (request.secure)
        async with s.get(scenario.url("/console/")) as r:
            assert r.status == 200
            assert "<h1>Overview</h1>" in await r.text()
        token = await page_csrf(s, scenario.url("/console/"))
        async with s.post(scenario.url("/console/logout"), data={"csrf": token}, allow_redirects=False) as r:
            assert r.status == 303
        async with s.get(scenario.url("/console/"), allow_redirects=False) as r:
            assert r.status == 303


async def test_login_refuses_client_keys_unknown_keys_and_missing_csrf(scenario):
    async with operator() as s:
        response = await log_in(s, scenario.api, key=API_KEY)  # a valid key, but role client
        assert response.status == 401
        response = await log_in(s, scenario.api, key="nope")
        assert response.status == 401
        async with s.post(scenario.url("/console/login"), data={"api_key": ADMIN_KEY}) as r:
            assert r.status == 403
            assert "csrf_failed" in await r.text()
        async with s.get(scenario.url("/console/"), allow_redirects=False) as r:
            assert r.status == 303


async def test_failed_logins_are_rate_limited_per_client(scenario):
    async with operator() as s:
        for _ in range(5):
            assert (await log_in(s, scenario.api, key="wrong")).status == 401
        response = await log_in(s, scenario.api)  # even the right key waits now
        assert response.status == 429
        assert int(response.headers["Retry-After"]) >= 1


async def test_a_post_without_the_sessions_csrf_token_is_403(scenario):
    async with operator() as s:
        await log_in(s, scenario.api)
        [letter, *_] = await scenario.gateway.store.dead_letters(None, 10)
        for data in ({"event_id": letter["event_id"]}, {"event_id": letter["event_id"], "csrf": "forged"}):
            async with s.post(scenario.url("/console/dead-letters/replay"), data=data) as r:
                assert r.status == 403
                assert "csrf_failed" in await r.text()
        assert [d["event_id"] for d in await scenario.gateway.store.dead_letters(None, 10)].count(
            letter["event_id"]
        ) == 1


async def test_overview_shows_routes_outcomes_and_charts(scenario):
    async with operator() as s:
        await log_in(s, scenario.api)
        async with s.get(scenario.url("/console/")) as r:
            html = await r.text()
    row = re.search(r'<tr data-route="mock">(.*?)</tr>', html, re.DOTALL)
    assert row, html
    assert "closed" in row.group(1)
    assert "unlimited" in row.group(1)
    assert "submitted: 1" in row.group(1)
    assert "report Retrieved: 1" in row.group(1)
    assert html.count('<svg class="chart"') == 3
    assert "<circle" in html  # one interval so far: the rate chart has a dot for it


async def test_message_search_by_number_id_client_ref_and_status(scenario):
    async with operator() as s:
        await log_in(s, scenario.api)
        for query in (f"q={TO[-6:]}", f"q={scenario.message_id}", f"q={CLIENT_REF}", "status=delivered"):
            async with s.get(scenario.url(f"/console/messages?{query}")) as r:
                html = await r.text()
                assert f"/console/messages/{scenario.message_id}" in html, query
                assert TO not in html  # masked like the logs
        async with s.get(scenario.url("/console/messages?q=nothing-like-this")) as r:
            assert "0 message(s)" in await r.text()
        async with s.get(scenario.url("/console/messages?status=bogus")) as r:
            assert r.status == 400
            assert "invalid_status" in await r.text()
        async with s.get(scenario.url("/console/messages?since=yesterday")) as r:
            assert r.status == 400
            assert "invalid_time" in await r.text()
        async with s.get(scenario.url("/console/messages?since=2000-01-01T00:00&until=2000-01-02T00:00")) as r:
            assert "0 message(s)" in await r.text()


async def test_timeline_shows_attempt_report_and_webhook_and_reveal_is_logged(scenario):
    async with operator() as s:
        await log_in(s, scenario.api)
        async with s.get(scenario.url(f"/console/messages/{scenario.message_id}")) as r:
            html = await r.text()
        kinds = re.findall(r'data-kind="(\w+)"', html)
        assert kinds[0] == "accepted"
        assert {"attempt", "report", "webhook"} <= set(kinds)
        assert "status 1000" in html and "-&gt; submitted" in html
        assert "Retrieved -&gt; delivered" in html
        assert "dead-lettered" in html
        assert TO not in html
        with capture_logs() as logs:
            async with s.get(scenario.url(f"/console/messages/{scenario.message_id}?reveal=1")) as r:
                assert TO in await r.text()
        [entry] = [e for e in logs if e["event"] == "console revealed numbers"]
        assert entry["user"] == "ops"
        assert entry["message_id"] == scenario.message_id
        async with s.get(scenario.url("/console/messages/no-such-id")) as r:
            assert r.status == 404


async def test_submitreq_download_equals_what_the_mock_mmsc_received(scenario):
    history = await scenario.gateway.store.message_history(scenario.message_id)
    [batch] = history.batches
    async with operator() as s:
        await log_in(s, scenario.api)
        async with s.get(scenario.url(f"/console/messages/{scenario.message_id}/submit/{batch.id}")) as r:
            assert r.status == 200
            assert batch.transaction_id in r.headers["Content-Disposition"]
            capture = await r.read()
        async with s.get(
            scenario.url(f"/console/messages/{scenario.message_id}/submit/{batch.id}?view=summary")
        ) as r:
            summary = await r.text()
        async with s.get(scenario.url(f"/console/messages/{scenario.message_id}/submit/999999")) as r:
            assert r.status == 404
    _, headers, body = split_http_message(capture)
    recorded = sorted(Path(scenario.record_dir).glob("*-in-request.http"))
    received = [split_http_message(p.read_bytes())[2] for p in recorded]
    assert body in received  # byte for byte what the worker sent
    assert decode(body, headers["content-type"]).transaction_id == batch.transaction_id
    assert 'id="decoded-type">SubmitReq<' in summary


async def test_inbound_page_with_a_cached_thumbnail(scenario):
    async with operator() as s:
        await log_in(s, scenario.api)
        async with s.get(scenario.url("/console/inbound")) as r:
            html = await r.text()
        assert "look at this" in html
        assert "+821099998888" not in html  # masked
        [src] = re.findall(r'<img class="thumb" src="([^"]+)"', html)
        async with s.get(scenario.url(src)) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "image/png"
            thumb = await r.read()
        import io

        from PIL import Image

        with Image.open(io.BytesIO(thumb)) as image:
            assert max(image.size) == 120  # from a 640x480 original
        cached = list((scenario.gateway.data_dir / "thumbs").glob("*.png"))
        assert len(cached) == 1
        async with s.get(scenario.url("/console/thumbs/not-a-digest")) as r:
            assert r.status == 400
        async with s.get(scenario.url("/console/thumbs/" + "0" * 64)) as r:
            assert r.status == 404


async def test_dead_letter_replay_delivers_the_event(scenario):
    scenario.receiver.fail_next = 0  # the receiver is back
    async with operator() as s:
        await log_in(s, scenario.api)
        async with s.get(scenario.url("/console/dead-letters")) as r:
            html = await r.text()
        event_id = re.findall(r'data-event="([^"]+)"', html)[-1]  # the oldest
        token = hidden_csrf(html)
        async with s.post(
            scenario.url("/console/dead-letters/replay"), data={"csrf": token, "event_id": event_id}
        ) as r:
            assert r.status == 200
            assert f"Event {event_id} queued" in await r.text()
        await scenario.receiver.wait_for(lambda events: any(e["id"] == event_id for e in events))
        async with s.post(
            scenario.url("/console/dead-letters/replay"), data={"csrf": token, "event_id": event_id}
        ) as r:
            assert r.status == 404
            assert "not_dead" in await r.text()
        async with s.post(scenario.url("/console/dead-letters/replay"), data={"csrf": token}) as r:
            assert r.status == 400


async def test_send_a_test_mms_shows_sizes_before_and_after_adaptation(scenario):
    image = noisy_jpeg((400, 300))  # over the route's 100 kB limit
    async with operator() as s:
        await log_in(s, scenario.api)
        token = await page_csrf(s, scenario.url("/console/send"))
        form = aiohttp.FormData()
        form.add_field("csrf", token)
        form.add_field("to", TO)
        form.add_field("text", "console test")
        form.add_field("image", image, filename="big.png", content_type="image/png")
        async with s.post(scenario.url("/console/send"), data=form) as r:
            assert r.status == 202
            html = await r.text()
        uploaded = int(re.search(r'id="size-uploaded">(\d+)<', html).group(1))
        before = int(re.search(r'id="size-before">(\d+)<', html).group(1))
        after = int(re.search(r'id="size-after">(\d+)<', html).group(1))
        assert uploaded == len(image) > 100_000
        assert before >= len(image)
        assert 0 < after < 100_000
        message_id = re.search(r'id="sent-id">([^<]+)<', html).group(1)
        record = await scenario.gateway.store.get_message(message_id)
        assert record.client_ref == "console-test"
        assert record.api_key == "ops"
        token = await page_csrf(s, scenario.url("/console/send"))
        async with s.post(scenario.url("/console/send"), data={"csrf": token, "to": "12", "text": "x"}) as r:
            assert r.status == 400
            assert "invalid_number" in await r.text()
        async with s.post(scenario.url("/console/send"), data={"csrf": token, "to": TO}) as r:
            assert r.status == 400
            assert "empty_message" in await r.text()


async def test_static_assets_are_served_locally_and_pages_reference_no_other_origin(scenario):
    async with operator() as s:
        await log_in(s, scenario.api)
        for path in ("/console/static/console.css", "/console/static/console.js"):
            async with s.get(scenario.url(path)) as r:
                assert r.status == 200
        for path in PAGES:
            async with s.get(scenario.url(path)) as r:
                html = await r.text()
                assert "default-src 'self'" in r.headers["Content-Security-Policy"]
            assert not re.search(r'(src|href)="(https?:)?//', html), path
            assert '<meta name="viewport"' in html
            # every visible form control has a label
            for control in re.findall(r'<(?:input|select|textarea)\b[^>]*\bid="([^"]+)"', html):
                assert f'for="{control}"' in html, (path, control)
