"""The operator console in real headless Chromium (Debian's /usr/bin/chromium driven by
Playwright): log in with the keyboard, find a sent message, open its timeline, replay a
dead letter, send a test MMS, opt a pool subscriber in, at desktop and at phone width. Screenshots go to the test's
temp dir (and, with MM7GW_UPDATE_DOCS=1, to docs/ for the README); what they show is
asserted through the DOM.

Without Chromium or Playwright the tests skip, except under CI=1 where they fail: CI
installs Chromium (.ci/run), so a skip there would hide a broken setup.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.store.records import ConsentChange
from tests.gateway.console_support import (
    ADMIN_KEY,
    CLIENT_REF,
    POOL,
    TO,
    Scenario,
    console_scenario,
)
from tests.gateway.support import noisy_jpeg

CHROMIUM = Path("/usr/bin/chromium")
DOCS = Path(__file__).resolve().parents[2] / "docs"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI=1 but {reason}: the console's browser tests cannot run")
    pytest.skip(f"{reason} (.ci/run installs it; set CI=1 to make this a failure)")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    async with async_playwright() as playwright:
        # Never `playwright install`: the system Chromium, no browser download.
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture
async def scenario(tmp_path) -> AsyncIterator[Scenario]:
    async with console_scenario(tmp_path) as running:
        yield running


async def log_in_with_keyboard(page: Any, scenario: Scenario) -> None:
    await page.goto(scenario.url("/console/messages"))
    assert page.url.endswith("/console/login")  # no session: sent to the login
    await page.get_by_label("Admin API key").focus()
    await page.keyboard.type(ADMIN_KEY)
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"/console/$"))


async def console_screenshots(page: Any, scenario: Scenario, out_dir: Path) -> dict[str, Path]:
    """The README's two pictures: the overview and the delivered message's timeline."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shots = {
        "overview": (scenario.url("/console/"), out_dir / "console-overview.png"),
        "timeline": (
            scenario.url(f"/console/messages/{scenario.message_id}"),
            out_dir / "console-timeline.png",
        ),
    }
    for url, path in shots.values():
        await page.goto(url)
        await page.screenshot(path=str(path), full_page=True)
    return {name: path for name, (_, path) in shots.items()}


async def test_operator_walkthrough_in_chromium(browser, scenario, tmp_path):
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await log_in_with_keyboard(page, scenario)
    assert await page.locator("#routes tr[data-route=mock] .badge").inner_text() == "closed"
    assert await page.locator("svg.chart").count() == 3

    # Find the sent message by its client_ref and open its timeline.
    await page.get_by_role("link", name="Messages").click()
    await page.get_by_label("Number, message id or client_ref").fill(CLIENT_REF)
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name=scenario.message_id).click()
    await page.wait_for_url(re.compile(scenario.message_id))
    assert await page.locator("#message-status").inner_text() == "delivered"
    kinds = await page.locator("#timeline li").evaluate_all(
        "items => items.map(i => i.dataset.kind)"
    )
    assert kinds[0] == "accepted" and {"attempt", "report", "webhook"} <= set(kinds)
    assert TO not in await page.locator("#recipients").inner_text()  # masked
    await page.screenshot(path=str(tmp_path / "timeline.png"), full_page=True)
    await page.get_by_role("link", name="Reveal numbers").click()
    assert TO in await page.locator("#recipients").inner_text()

    # Replay a dead letter (the receiver is back) and see it arrive.
    scenario.receiver.fail_next = 0
    await page.get_by_role("link", name="Dead letters").click()
    cards = page.locator("#dead-letters li")
    before = await cards.count()
    event_id = await cards.last.get_attribute("data-event")
    await page.get_by_role("button", name=f"Replay event {event_id}").click()
    assert event_id in await page.locator("#replayed").inner_text()
    await scenario.receiver.wait_for(lambda events: any(e["id"] == event_id for e in events))
    await page.reload()
    assert await page.locator("#dead-letters li").count() == before - 1
    await page.screenshot(path=str(tmp_path / "dead-letters.png"), full_page=True)

    # Send a test MMS with an image upload: sizes before and after adaptation.
    image = tmp_path / "photo.jpg"
    image.write_bytes(noisy_jpeg((400, 300)))
    await page.get_by_role("link", name="Send test").click()
    await page.get_by_label("To (number)").fill(TO)
    await page.get_by_label("Text").fill("hello from the console")
    await page.get_by_label("Image").set_input_files(str(image))
    await page.get_by_role("button", name="Send").click()
    await page.locator("#send-result").wait_for()
    uploaded = int(await page.locator("#size-uploaded").inner_text())
    after = int(await page.locator("#size-after").inner_text())
    assert uploaded == image.stat().st_size
    assert 0 < after < 100_000 < uploaded
    await page.screenshot(path=str(tmp_path / "send.png"), full_page=True)

    # Opt a number in to the pool with a reason: the status and history show it.
    await page.get_by_role("link", name="Subscribers").click()
    await page.get_by_label("Pool").select_option(POOL)
    await page.get_by_label("Number (E.164)").fill(TO)
    await page.get_by_role("button", name="Look up").click()
    assert (await page.locator("#consent-status").get_attribute("data-status")) == "none"
    await page.get_by_label("opted_in").check()
    await page.get_by_label("Reason (kept in the history)").fill("asked at the counter")
    await page.get_by_role("button", name="Record change").click()
    await page.locator("#changed").wait_for()
    assert await page.locator("#consent-status").inner_text() == "opted_in"
    history = await page.locator("#consent-history").inner_text()
    assert "console:ops" in history and "asked at the counter" in history
    assert TO not in await page.locator("main").inner_text()  # masked

    # Inbound MMS with a thumbnail that really loaded.
    await page.get_by_role("link", name="Inbound").click()
    thumb = page.locator("img.thumb").first
    # Wait for the image's own load (or error) event: under load the click returns
    # before the thumbnail arrives; a broken image still fails (naturalWidth 0).
    width = await thumb.evaluate(
        "img => img.complete ? img.naturalWidth : new Promise(done => {"
        " img.addEventListener('load', () => done(img.naturalWidth));"
        " img.addEventListener('error', () => done(0)); })"
    )
    assert width == 120

    shots = await console_screenshots(page, scenario, tmp_path / "shots")
    for path in shots.values():
        assert path.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("MM7GW_UPDATE_DOCS") == "1":
        await console_screenshots(page, scenario, DOCS)

    # Log out: the session is gone.
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url(re.compile(r"/console/login$"))
    await page.goto(scenario.url("/console/"))
    assert page.url.endswith("/console/login")
    await context.close()


async def test_phone_width_has_no_horizontal_scroll_and_a_keyboard_skip_link(browser, scenario, tmp_path):
    context = await browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = await context.new_page()
    await log_in_with_keyboard(page, scenario)
    subscriber = f"/console/subscribers?pool={POOL}&number=%2B{TO[1:]}"
    await scenario.gateway.store.set_consent(
        ConsentChange(pool=POOL, number=TO, status="opted_out", source="api",
                      reason="a long reason " * 8, at=0.0, recorded_at=0.0)
    )  # fmt: skip
    for path in ("/console/", f"/console/messages/{scenario.message_id}", "/console/send",
                 "/console/dead-letters", subscriber):  # fmt: skip
        await page.goto(scenario.url(path))
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (path, overflow)
        name = re.sub(r"\W", "_", path)
        await page.screenshot(path=str(tmp_path / f"phone{name}.png"))
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    await context.close()
