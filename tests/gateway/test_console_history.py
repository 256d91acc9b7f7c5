"""The store side of the console: every SubmitReq attempt recorded with the MMSC's answer
(in the transaction of the batch update), message search, sessions, login limits, charts."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from gateway.console.charts import CounterSampler, svg_chart
from gateway.console.session import LoginLimiter, Sessions, tokens_match
from gateway.ops.metrics import Metrics
from gateway.store.history import MessageQuery
from tests.gateway.support import API_KEY, make_config

TO = "+821012345678"


async def _attempts(gw, message_id, count):
    for _ in range(500):
        history = await gw.gateway.store.message_history(message_id)
        if len(history.attempts) >= count:
            return history
        await asyncio.sleep(0.02)
    raise AssertionError(f"only {len(history.attempts)} attempts: {history.attempts}")


async def test_each_attempt_is_stored_with_its_status_then_success(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc(fail_rate=[[3001, 1.0]], fault_style="rsp")
    gw = await run_gateway(make_config(tmp_path, mock.url))
    status, body = await gw.submit({"to": TO, "text": "hi", "client_ref": "c-1"})
    assert status == 202, body
    await _attempts(gw, body["id"], 2)
    await mock.configure(fail_rate="")
    await gw.wait_status(body["id"], {"submitted", "delivered"})
    history = await gw.gateway.store.message_history(body["id"])
    first, *_, last = history.attempts
    assert (first.attempt, first.outcome, first.status_code) == (1, "retry", 3001)
    assert first.error is None
    assert (last.outcome, last.status_code) == ("submitted", 1000)
    assert last.attempt == len(history.attempts) == history.batches[0].attempts
    assert {a.batch_id for a in history.attempts} == {history.batches[0].id}


async def test_a_rejection_and_a_transport_failure_are_recorded(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc(fail_rate=[[2002, 1.0]], fault_style="rsp")
    gw = await run_gateway(make_config(tmp_path, mock.url, mmsc_retry={"max_attempts": 1}))
    _, body = await gw.submit({"to": TO, "text": "hi"})
    await gw.wait_status(body["id"], {"rejected"})
    [attempt] = (await gw.gateway.store.message_history(body["id"])).attempts
    assert (attempt.outcome, attempt.status_code) == ("rejected", 2002)

    await mock.configure(fail_rate="")
    await mock.runner.cleanup()  # the MMSC is gone: connection refused
    _, body = await gw.submit({"to": TO, "text": "again"})
    await gw.wait_status(body["id"], {"failed"})
    [attempt] = (await gw.gateway.store.message_history(body["id"])).attempts
    assert attempt.status_code is None
    assert attempt.outcome == "failed"
    assert attempt.error


async def test_search_by_number_digits_id_client_ref_status_and_time(tmp_path, mock_mmsc, run_gateway):
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    _, one = await gw.submit({"to": TO, "text": "a", "client_ref": "ref-1"})
    _, two = await gw.submit({"to": "+821055556666", "text": "b"})
    store = gw.gateway.store

    async def ids(**query):
        return [m.id for m in await store.search_messages(MessageQuery(**query))]

    assert await ids(text="1012345678") == [one["id"]]
    assert await ids(text="+82 10-5555-6666") == [two["id"]]
    assert await ids(text="ref-1") == [one["id"]]
    assert await ids(text=two["id"]) == [two["id"]]
    assert set(await ids(status="queued") + await ids(status="submitted") + await ids(status="delivered")) == {
        one["id"], two["id"]
    }
    assert await ids(text="ref-1", since=0.0, until=1.0) == []
    assert await ids(text="no-match") == []
    assert API_KEY  # the messages belong to the REST client; the console sees every key's


def test_sessions_expire_and_end_and_csrf_compares_strictly():
    now = [1000.0]
    sessions = Sessions(60.0, clock=lambda: now[0])
    session = sessions.create("ops")
    assert sessions.get(session.id) is session
    now[0] += 61
    assert sessions.get(session.id) is None
    other = sessions.create("ops")
    sessions.end(other.id)
    assert sessions.get(other.id) is None
    assert sessions.get(None) is None
    assert tokens_match("abc", "abc")
    assert not tokens_match("abc", "abd")
    assert not tokens_match("abc", None)
    assert not tokens_match(None, "")


def test_login_limiter_slides():
    now = [0.0]
    limiter = LoginLimiter(attempts=2, window_seconds=10.0, clock=lambda: now[0])
    limiter.failed("a")
    assert limiter.retry_after("a") == 0
    limiter.failed("a")
    assert limiter.retry_after("a") == 10.0
    assert limiter.retry_after("b") == 0
    now[0] = 10.5
    assert limiter.retry_after("a") == 0
    limiter.failed("a")
    limiter.succeeded("a")
    assert limiter.retry_after("a") == 0


def test_charts_are_per_interval_differences_of_the_real_counters():
    registry = CollectorRegistry()
    metrics = Metrics(registry, ["r1"])
    now = [0.0]
    sampler = CounterSampler(registry, clock=lambda: now[0])
    sampler.sample()
    for _ in range(120):
        metrics.submit_requests_total.labels(mmsc="r1", status_class="success").inc()
        metrics.submit_latency_seconds.labels(mmsc="r1").observe(0.5)
    metrics.submission_outcomes_total.labels(mmsc="r1", outcome="submitted").inc(120)
    now[0] = 60.0
    sampler.sample()
    now[0] = 120.0  # a quiet minute after
    rate, latency, outcomes = sampler.series()
    assert rate.lines["rate"] == [(60.0, 2.0), (120.0, 0.0)]
    assert latency.lines["latency"] == [(60.0, 0.5), (120.0, 0.0)]
    assert outcomes.lines["submitted"] == [(60.0, 120.0), (120.0, 0.0)]
    svg = svg_chart(rate)
    assert svg.startswith('<svg class="chart"')
    assert 'role="img"' in svg and "<title>SubmitReq rate</title>" in svg
    assert "<polyline" in svg
