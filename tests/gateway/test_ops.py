"""Operability of a running gateway: access logs, the API request counter, /metrics
content negotiation, /readyz turning 503 with its reasons (locked store) but not for an
open circuit, which /healthz/routes and the circuit metric report."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from gateway.media.links import media_url
from gateway.ops.log_setup import configure_logging
from protocol import Address, DeliveryReportReq, encode
from tests.gateway.support import API_KEY, make_config

pytestmark = pytest.mark.asyncio

TO = "+12025550101"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """JSON logs at info level into a buffer; the global logging setup is restored after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging(level="info", fmt="json", stream=stream)
    yield stream
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def access_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [line for line in lines if str(line.get("logger", "")).startswith("gateway.access")]


async def eventually_status(gw: Any, path: str, status: int, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        async with gw.session.get(gw.ops + path) as response:
            body = await response.json()
            if response.status == status:
                return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} stayed {response.status}: {body}")
        await asyncio.sleep(0.05)


async def test_access_logs_for_api_and_mm7_listeners(
    tmp_path, mock_mmsc, run_gateway, log_stream
) -> None:
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    status, body = await gw.submit({"to": TO, "text": "secret words"})
    assert status == 202
    async with gw.session.get(gw.api + "/nowhere/123?x=1", headers=AUTH) as response:
        assert response.status == 404
    # A valid signed media link: the signature must not reach the logs.
    data = b"media bytes " * 50
    digest = await gw.gateway.media_store.put(data)
    link = media_url(gw.api, gw.gateway.links.key, digest, int(time.time()) + 60)
    signature = link.partition("sig=")[2]
    assert signature
    async with gw.session.get(link) as response:
        assert response.status == 200
        assert await response.read() == data
    report = DeliveryReportReq(
        transaction_id="dr-access-1",
        message_id="unknown-mm7-id",
        recipient=Address.number(TO),
        sender=Address.short_code("12345"),
        date=datetime.now(UTC),
        mm_status="Retrieved",
    )
    content_type, payload = encode(report)
    async with gw.session.post(
        gw.mm7 + "/mm7", data=payload, headers={"Content-Type": content_type}
    ) as response:
        assert response.status == 200
    async with gw.session.get(gw.ops + "/healthz") as response:
        assert response.status == 200

    lines = access_lines(log_stream)
    by_route = {(line["listener"], line["method"], line["route"]): line for line in lines}
    post = by_route["api", "POST", "/v1/messages"]
    assert post["status"] == 202 and post["event"] == "http request"
    assert post["path"] == "/v1/messages" and post["peer"] == "127.0.0.1"
    assert post["bytes"] > 0 and post["duration_seconds"] >= 0
    assert post["request_id"] and post["level"] == "info"
    unmatched = by_route["api", "GET", None]
    assert unmatched["status"] == 404 and unmatched["path"] == "/nowhere/123"
    media = by_route["api", "GET", "/v1/media/{id}"]
    # Bytes on the wire, headers included (aiohttp's %b), so at least the media.
    assert media["status"] == 200 and len(data) < media["bytes"] < len(data) + 1000
    assert media["path"] == f"/v1/media/{digest}"
    mm7 = by_route["mm7", "POST", "/mm7"]
    assert mm7["status"] == 200 and mm7["bytes"] > 0
    assert {line["listener"] for line in lines} == {"api", "mm7"}  # ops is not access-logged
    text = log_stream.getvalue()
    assert signature not in text and "sig=" not in text
    assert "secret words" not in text  # no bodies
    assert body["id"] not in json.dumps(lines)  # the POST's answer body is not logged


async def test_api_requests_are_counted_by_route_template(tmp_path, mock_mmsc, run_gateway) -> None:
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    _, body = await gw.submit({"to": TO, "text": "x"})
    await gw.get(body["id"])
    await gw.get(body["id"])
    async with gw.session.post(gw.api + "/v1/messages", json={"to": TO}) as response:
        assert response.status == 401
    async with gw.session.get(gw.api + f"/v1/nothing/{TO}", headers=AUTH) as response:
        assert response.status == 404
    async with gw.session.put(gw.api + "/v1/messages", headers=AUTH) as response:
        assert response.status == 405

    def count(method: str, route: str, status: int) -> float | None:
        labels = {"method": method, "route": route, "status": str(status)}
        return gw.gateway.registry.get_sample_value("mm7gw_api_requests_total", labels)

    assert count("POST", "/v1/messages", 202) == 1
    assert count("GET", "/v1/messages/{id}", 200) == 2
    assert count("POST", "/v1/messages", 401) == 1
    assert count("GET", "unmatched", 404) == 1
    assert count("PUT", "unmatched", 405) == 1
    async with gw.session.get(gw.ops + "/metrics") as response:
        families = text_string_to_metric_families(await response.text())
        family = next(f for f in families if f.name == "mm7gw_api_requests")
    values = {v for sample in family.samples for v in sample.labels.values()}
    assert body["id"] not in values and TO not in values
    assert not any("nothing" in v for v in values)


@pytest.mark.parametrize(
    ("accept", "content_type", "tail"),
    [
        (None, "text/plain; version=0.0.4; charset=utf-8", b"\n"),
        ("application/openmetrics-text; version=1.0.0", "application/openmetrics-text", b"# EOF\n"),
    ],
)
async def test_metrics_negotiates_openmetrics(
    tmp_path, mock_mmsc, run_gateway, accept, content_type, tail
) -> None:
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    headers = {"Accept": accept} if accept else {}
    async with gw.session.get(gw.ops + "/metrics", headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith(content_type)
        text = await response.read()
    assert text.endswith(tail)
    assert b"mm7gw_build_info" in text


async def test_readyz_is_503_while_the_store_cannot_write(
    tmp_path: Path, mock_mmsc, run_gateway
) -> None:
    mock = await mock_mmsc()
    gw = await run_gateway(make_config(tmp_path, mock.url))
    ready = await eventually_status(gw, "/readyz", 200)
    assert ready["status"] == "ready" and ready["store"] == "ok" and ready["reasons"] == []
    # Another process holding the write lock: the gateway's writes cannot commit.
    other = sqlite3.connect(tmp_path / "gateway.sqlite3", isolation_level=None, timeout=0.1)
    try:
        other.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        async with gw.session.get(gw.ops + "/readyz") as response:
            assert response.status == 503
            body = await response.json()
        assert time.monotonic() - started < 3.0  # bounded, not the 5 s busy timeout
        assert body["status"] == "not_ready" and body["store"] == "error"
        assert len(body["reasons"]) == 1 and body["reasons"][0].startswith("store: ")
        assert body["routes"] == {"mock": "closed"}
    finally:
        other.execute("ROLLBACK")
        other.close()
    await eventually_status(gw, "/readyz", 200)
    async with gw.session.get(gw.ops + "/healthz") as response:
        assert response.status == 200  # alive throughout


async def test_readyz_stays_ready_while_a_route_circuit_is_open(
    tmp_path, mock_mmsc, run_gateway
) -> None:
    """An open circuit is route health, not gateway readiness: the API still takes work."""
    mock = await mock_mmsc(http_error_rate=1.0)
    gw = await run_gateway(
        make_config(
            tmp_path,
            mock.url,
            mmsc_retry={"initial_backoff_seconds": 0.01, "max_backoff_seconds": 0.05, "jitter": 0},
        )
    )
    _, body = await gw.submit({"to": TO, "text": "x"})
    deadline = time.monotonic() + 10
    routes = await eventually_status(gw, "/healthz/routes", 200)
    while routes["routes"]["mock"]["circuit"] != "open":
        assert time.monotonic() < deadline, routes
        await asyncio.sleep(0.02)
        routes = await eventually_status(gw, "/healthz/routes", 200)
    assert routes == {"routes": {"mock": {"circuit": "open", "queue": 1}}}
    async with gw.session.get(gw.ops + "/readyz") as response:
        assert response.status == 200
        ready = await response.json()
    assert ready["status"] == "ready" and ready["reasons"] == []
    assert ready["routes"] == {"mock": "open"} and ready["queue"] == {"mock": 1}
    registry = gw.gateway.registry
    state = {
        s: registry.get_sample_value("mm7gw_route_circuit_state", {"mmsc": "mock", "state": s})
        for s in ("closed", "degraded", "open")
    }
    assert state == {"closed": 0.0, "degraded": 0.0, "open": 1.0}
    await mock.configure(http_error_rate=0.0)
    await gw.wait_status(body["id"], {"submitted", "delivered"})
    ready = await eventually_status(gw, "/readyz", 200)
    assert ready["routes"] == {"mock": "closed"}
