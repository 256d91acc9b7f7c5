"""The console's pool subscribers page over real loopback HTTP: consent lookup with its
history, a change with a reason (recorded through the store the REST API and submission
use), CSRF, masking with a logged reveal, and bad input refused before anything is stored."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from structlog.testing import capture_logs

from gateway.ops.log_setup import mask_number
from tests.gateway.callback_helpers import bearer
from tests.gateway.console_support import (
    POOL,
    TO,
    console_scenario,
    hidden_csrf,
    log_in,
    operator,
    page_csrf,
)

OTHER = "+821087654321"  # no consent record anywhere


@pytest.fixture
async def scenario(tmp_path):
    async with console_scenario(tmp_path) as running:
        yield running


def lookup(number: str = TO, pool: str = POOL, extra: str = "") -> str:
    return f"/console/subscribers?pool={pool}&number={quote(number)}{extra}"


def visible(html: str) -> str:
    """The page's text without its markup (hidden fields and links are not shown)."""
    return re.sub(r"<[^>]+>", " ", html)


def number_box(html: str) -> str:
    match = re.search(r'<input id="number"[^>]*>', html)
    assert match, html
    return match.group(0)


def history_rows(html: str) -> list[list[str]]:
    """Each history entry as [when, status, source, reason], oldest first."""
    listed = re.search(r'<ol class="timeline" id="consent-history">(.*?)</ol>', html, re.DOTALL)
    if listed is None:
        return []
    rows = []
    for item in re.findall(r"<li\b.*?</li>", listed.group(1), re.DOTALL):
        reason = re.search(r'class="reason">(.*?)</span>', item)
        rows.append([
            re.search(r"<time>(.*?)</time>", item).group(1),
            re.search(r'class="status">(.*?)</strong>', item).group(1),
            re.search(r'class="source">(.*?)</span>', item).group(1),
            reason.group(1) if reason else "",
        ])
    return rows


def status_of(html: str) -> str:
    match = re.search(r'id="consent-status"[^>]*>([^<]*)<', html)
    assert match, html
    return match.group(1).strip()


async def test_subscribers_page_and_change_redirect_to_login_without_a_session(scenario):
    async with operator() as s:
        async with s.get(scenario.url(lookup()), allow_redirects=False) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/console/login"
        data = {"pool": POOL, "number": TO, "status": "opted_out", "reason": "x"}
        async with s.post(scenario.url("/console/subscribers"), data=data, allow_redirects=False) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/console/login"
    assert await scenario.gateway.store.get_consent(POOL, TO) is None


async def test_lookup_shows_status_source_time_and_history_masked_and_reveal_is_logged(scenario):
    api = scenario.client
    path = f"{scenario.api}/v1/pools/{POOL}/subscribers/{TO}"
    body = {"status": "opted_in", "source": "web-form", "at": "2026-01-02T03:04:05Z"}
    async with api.put(path, json=body, headers=bearer()) as r:
        assert r.status == 200, await r.text()
    async with api.delete(path, headers=bearer()) as r:
        assert r.status == 200, await r.text()
    async with operator() as s:
        await log_in(s, scenario.api)
        async with s.get(scenario.url("/console/subscribers")) as r:
            assert r.status == 200
            html = await r.text()
        assert f'<option value="{POOL}"' in html
        assert 'href="/console/subscribers" aria-current="page"' in html  # the nav link
        async with s.get(scenario.url(lookup())) as r:
            assert r.status == 200
            html = await r.text()
        assert status_of(html) == "opted_out"
        assert re.search(r'id="consent-source">api<', html)
        rows = history_rows(html)
        assert [(row[1], row[2], row[3]) for row in rows] == [
            ("opted_in", "web-form", ""),
            ("opted_out", "api", "DELETE"),
        ]
        assert rows[0][0] == "2026-01-02T03:04:05Z"
        # Masked like the other pages: not in the text, not in the search box.
        assert mask_number(TO) in visible(html)
        assert TO not in visible(html)
        assert TO not in number_box(html)
        with capture_logs() as logs:
            async with s.get(scenario.url(lookup(extra="&reveal=1"))) as r:
                revealed = await r.text()
        assert TO in visible(revealed)
        [entry] = [e for e in logs if e["event"] == "console revealed numbers"]
        assert entry["user"] == "ops"
        assert entry["pool"] == POOL
        # A number without a record: the pool's rule applies.
        async with s.get(scenario.url(lookup(OTHER))) as r:
            html = await r.text()
        assert r.status == 200
        assert "No consent record" in html
        assert "opt_in" in html
        assert history_rows(html) == []


async def test_a_change_is_recorded_with_reason_and_source_and_the_pool_rule_follows_it(scenario):
    api = scenario.client
    message = {"to": TO, "pool": POOL, "text": "promo"}
    async with api.post(scenario.url("/v1/messages"), json=message, headers=bearer()) as r:
        assert r.status == 403  # an opt_in pool and no opt-in yet
        assert (await r.json())["error"]["code"] == "consent_required"
    reason = "Customer asked by phone, ticket 4711"
    async with operator() as s:
        await log_in(s, scenario.api)
        token = await page_csrf(s, scenario.url(lookup()))
        form = {"csrf": token, "pool": POOL, "number": TO, "status": "opted_in", "reason": reason}
        async with s.post(scenario.url("/console/subscribers"), data=form, allow_redirects=False) as r:
            assert r.status == 303
            location = r.headers["Location"]
        assert location.startswith("/console/subscribers?") and "changed=opted_in" in location
        async with s.get(scenario.url(location)) as r:
            html = await r.text()
        assert re.search(r'id="changed">Recorded: opted_in', html)
        assert status_of(html) == "opted_in"
        assert re.search(r'id="consent-source">console:ops<', html)
        [row] = history_rows(html)
        assert row[1:4] == ["opted_in", "console:ops", reason]
    async with api.get(scenario.url(f"/v1/pools/{POOL}/subscribers/{TO}"), headers=bearer()) as r:
        record = await r.json()
    assert record["status"] == "opted_in"
    assert record["source"] == "console:ops"
    assert [(h["status"], h["source"], h["reason"]) for h in record["history"]] == [
        ("opted_in", "console:ops", reason)
    ]
    async with api.post(scenario.url("/v1/messages"), json=message, headers=bearer()) as r:
        assert r.status == 202, await r.text()  # the same record the submission checks


async def test_a_change_without_the_sessions_csrf_token_is_403_and_stores_nothing(scenario):
    async with operator() as s:
        await log_in(s, scenario.api)
        form = {"pool": POOL, "number": TO, "status": "opted_out", "reason": "forged"}
        for data in (form, {**form, "csrf": "forged"}):
            async with s.post(scenario.url("/console/subscribers"), data=data) as r:
                assert r.status == 403
                assert "csrf_failed" in await r.text()
    assert await scenario.gateway.store.get_consent(POOL, TO) is None


async def test_bad_input_is_400_with_a_clear_error_and_stores_nothing(scenario):
    good = {"pool": POOL, "number": TO, "status": "opted_out", "reason": "asked to stop"}
    cases = [
        ({"pool": "nope"}, "unknown_pool"),
        ({"pool": ""}, "missing_pool"),
        ({"number": "12"}, "invalid_number"),
        ({"number": "+999123"}, "invalid_number"),
        ({"number": ""}, "missing_number"),
        ({"status": "maybe"}, "invalid_status"),
        ({"status": ""}, "invalid_status"),
        ({"reason": "   "}, "missing_reason"),
        ({"reason": "x" * 501}, "reason_too_long"),
    ]
    async with operator() as s:
        await log_in(s, scenario.api)
        token = await page_csrf(s, scenario.url("/console/subscribers"))
        for change, code in cases:
            data = {**good, **change, "csrf": token}
            async with s.post(scenario.url("/console/subscribers"), data=data, allow_redirects=False) as r:
                html = await r.text()
                assert r.status == 400, (change, html)
            assert re.search(rf'role="alert" id="subscriber-error"><code>{code}</code>: \S', html), change
            assert 'aria-invalid="true"' in html, change
            hidden_csrf(html)  # the form is back, ready for another try
        async with s.get(scenario.url(lookup("12"))) as r:
            assert r.status == 400
            assert "invalid_number" in await r.text()
        async with s.get(scenario.url(lookup(pool="nope"))) as r:
            assert r.status == 400
            assert "unknown_pool" in await r.text()
    assert await scenario.gateway.store.get_consent(POOL, TO) is None
    assert await scenario.gateway.store.get_consent("nope", TO) is None
