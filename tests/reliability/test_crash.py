"""Crash safety: ``mm7-gateway serve`` SIGKILLed at random points while traffic flows.

One mock MMSC subprocess (``--record``) stays up for the whole test; it sends delivery
reports to the gateway's MM7 listener and, on request, inbound MMS (``/admin/deliver``),
retrying any callback that is not answered 1000, as carriers do. The gateway is killed
with SIGKILL at least five times while applications stream messages through the REST API
with an ``Idempotency-Key`` each, retrying a request until they get an answer.

Proven at the end, from the mock's recording and the gateway's database:

* every message that got a 202 (or a 200 replay) was submitted to the MMSC at least once,
  and nothing else was (no message the client never had confirmed turns up twice);
* an Idempotency-Key maps to exactly one message, however often the request was retried
  across kills; the 202s lost to a kill (the client saw an error, the message was stored)
  are counted and replayed, never duplicated;
* every recipient reached its final state (delivered) after the last restart;
* every delivery report and inbound MMS the gateway answered 1000 is in its database.

A JSON summary line gives the figures (run with ``-s`` to see it).
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from protocol import DeliverReq, DeliveryReportReq, Response, SubmitReq
from tests.reliability.helpers import (
    AUTH,
    Daemon,
    eventually,
    free_port,
    gateway_toml,
    recorded_exchanges,
    wait_http,
)

KILLS = 6
MIN_MESSAGES = 150
MAX_MESSAGES = 1200
SENDERS = 6
INBOUND = 16


@dataclass
class Ledger:
    """What the applications saw, per Idempotency-Key."""

    ids: dict[str, str] = field(default_factory=dict)
    recipients: dict[str, int] = field(default_factory=dict)
    errors_before_answer: dict[str, int] = field(default_factory=dict)
    replayed: set[str] = field(default_factory=set)
    other_statuses: list[int] = field(default_factory=list)
    #: Keys of requests the gateway refused (invalid on purpose): none may be submitted.
    refused: set[str] = field(default_factory=set)
    sent: int = 0


async def send_one(
    session: aiohttp.ClientSession, api: str, key: str, body: dict[str, Any], ledger: Ledger
) -> None:
    """POST until answered; a connection error (the gateway died) is retried, same key."""
    errors = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            async with session.post(
                api + "/v1/messages",
                json=body,
                headers={**AUTH, "Idempotency-Key": key},
                timeout=aiohttp.ClientTimeout(total=5),
            ) as r:
                if r.status in (200, 202):
                    resource = await r.json()
                    previous = ledger.ids.setdefault(key, resource["id"])
                    assert previous == resource["id"], f"key {key} got two message ids"
                    if r.status == 200:
                        assert r.headers.get("Idempotent-Replayed") == "true"
                        ledger.replayed.add(key)
                    ledger.errors_before_answer[key] = errors
                    return
                if r.status == 400:
                    ledger.refused.add(key)
                    return
                ledger.other_statuses.append(r.status)
        except (aiohttp.ClientError, OSError, TimeoutError):
            pass
        errors += 1
        await asyncio.sleep(0.05)
    raise AssertionError(f"request {key} was never answered")


@pytest.mark.slow
async def test_sigkill_storm_loses_nothing_accepted(tmp_path: Path) -> None:
    rng = random.Random(8)
    mock_port = free_port()
    ports = {name: free_port() for name in ("api", "mm7", "ops")}
    record = tmp_path / "record"
    logs = tmp_path / "daemons.log"
    mock = Daemon(
        [
            "mock-mmsc",
            "--listen", f"127.0.0.1:{mock_port}",
            "--record", str(record),
            "--vasp-url", f"http://127.0.0.1:{ports['mm7']}/mm7",
            "--dr-delay", "0.2",
            "--callback-attempts", "200",
            "--callback-backoff", "0.1",
            "--callback-max-backoff", "0.5",
            "--callback-timeout", "3",
            "--seed", "8",
        ],
        logs,
    )  # fmt: skip
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path / "data", f"http://127.0.0.1:{mock_port}/mm7", ports))
    gateway = Daemon(["serve", "--config", str(config)], logs)
    api = f"http://127.0.0.1:{ports['api']}"
    mock_base = f"http://127.0.0.1:{mock_port}"
    healthz = f"http://127.0.0.1:{ports['ops']}/healthz"
    ledger = Ledger()
    inbound_results: list[dict[str, Any]] = []
    kills = 0
    mock.start()
    gateway.start()
    try:
        await wait_http(mock_base + "/admin/stats")
        await wait_http(healthz)
        killing = True

        async def sender(worker: int) -> None:
            async with aiohttp.ClientSession() as session:
                for i in range(worker, MAX_MESSAGES, SENDERS):
                    if not killing and i >= MIN_MESSAGES:
                        return
                    to = ["+12025550101", "+12025550102"] if i % 4 == 0 else "+12025550103"
                    if i % 7 == 3:
                        to = "+1555"  # invalid on purpose: answered 400, never submitted
                    else:
                        ledger.recipients[f"k{i}"] = 2 if i % 4 == 0 else 1
                        ledger.sent += 1
                    await send_one(session, api, f"k{i}", {"to": to, "text": f"m{i}"}, ledger)
                    await asyncio.sleep(0.05)

        async def inbound() -> None:
            async with aiohttp.ClientSession() as session:
                for j in range(INBOUND):
                    async with session.post(
                        mock_base + "/admin/deliver",
                        json={
                            "from": "+12025550199",
                            "to": "12345",
                            "text": f"in{j}",
                            "retry": True,
                        },
                    ) as r:
                        assert r.status == 200
                        inbound_results.append(await r.json())
                    await asyncio.sleep(0.25)

        traffic = [asyncio.create_task(sender(w)) for w in range(SENDERS)]
        traffic.append(asyncio.create_task(inbound()))
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            gateway.kill()
            kills += 1
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            gateway.start()
            await wait_http(healthz)
        killing = False
        await asyncio.gather(*traffic)

        # After the last restart everything must reach its final state.
        pending = dict(ledger.ids)

        async def all_final() -> bool:
            async with aiohttp.ClientSession() as session:
                for key, message_id in list(pending.items()):
                    async with session.get(f"{api}/v1/messages/{message_id}", headers=AUTH) as r:
                        assert r.status == 200, f"accepted message {message_id} is gone"
                        resource = await r.json()
                    assert len(resource["recipients"]) == ledger.recipients[key]
                    if all(x["status"] == "delivered" for x in resource["recipients"]):
                        del pending[key]
            return not pending

        drain_seconds = await eventually(all_final, 40, "every recipient delivered", 0.3)
    finally:
        gateway.stop()
        mock.stop()

    exchanges = recorded_exchanges(record)
    submits = [
        e.request.transaction_id
        for e in exchanges
        if e.direction == "in" and isinstance(e.request, SubmitReq) and e.request.transaction_id
    ]
    submitted_messages = {t.rsplit("-", 1)[0] for t in submits}
    accepted = set(ledger.ids.values())
    answered_1000 = [
        e
        for e in exchanges
        if e.direction == "out"
        and isinstance(e.response, Response)
        and e.response.status_code == 1000
        and e.http_status == 200
    ]
    reports_1000 = {
        e.request.transaction_id for e in answered_1000 if isinstance(e.request, DeliveryReportReq)
    }
    inbound_1000 = {
        e.request.transaction_id for e in answered_1000 if isinstance(e.request, DeliverReq)
    }
    callbacks_failed = sum(
        1
        for e in exchanges
        if e.direction == "out" and e.request is not None and e not in answered_1000
    )
    with sqlite3.connect(tmp_path / "data" / "gateway.sqlite3") as db:
        stored_messages = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        reused_keys = db.execute(
            "SELECT COUNT(*) FROM (SELECT idempotency_key FROM messages "
            "GROUP BY idempotency_key HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        stored_reports = {r[0] for r in db.execute("SELECT transaction_id FROM delivery_reports")}
        inbound_rows = [r[0] for r in db.execute("SELECT transaction_id FROM inbound_messages")]

    errored = [k for k, n in ledger.errors_before_answer.items() if n > 0]
    summary = {
        "suite": "crash",
        "kills": kills,
        "gateway_starts": gateway.starts,
        "messages_sent": ledger.sent,
        "messages_accepted": len(accepted),
        "requests_refused_400": len(ledger.refused),
        "requests_errored_then_retried": len(errored),
        "lost_202_replayed": len(ledger.replayed),
        "other_statuses": sorted(set(ledger.other_statuses)),
        "submit_requests": len(submits),
        "batches_submitted": len(set(submits)),
        "duplicate_submits": len(submits) - len(set(submits)),
        "stored_messages": stored_messages,
        "delivery_reports_answered_1000": len(reports_1000),
        "inbound_answered_1000": len(inbound_1000),
        "inbound_pushes_delivered": sum(1 for r in inbound_results if r["delivered"]),
        "callback_attempts_not_1000": callbacks_failed,
        "drain_seconds": round(drain_seconds, 2),
    }
    print(json.dumps(summary))

    assert kills >= 5
    assert len(accepted) == len(ledger.ids) == ledger.sent, "every request got an answer"
    assert ledger.refused and not ledger.refused & set(ledger.ids), "a refused request was kept"
    assert not {f"m{k[1:]}" for k in ledger.refused} & submitted_texts(exchanges)
    assert not accepted - submitted_messages, "accepted but never submitted"
    assert not submitted_messages - accepted, "submitted a message no client had accepted"
    assert stored_messages == len(accepted), "a retried request created a second message"
    assert reused_keys == 0
    # Every report and inbound MMS answered 1000 is stored, once.
    assert reports_1000 <= stored_reports, reports_1000 - stored_reports
    assert inbound_1000 <= set(inbound_rows), inbound_1000 - set(inbound_rows)
    assert len(inbound_rows) == len(set(inbound_rows)), "an inbound MMS was stored twice"
    assert all(r["delivered"] for r in inbound_results)
    assert len(inbound_1000) == INBOUND


def submitted_texts(exchanges: list[Any]) -> set[str]:
    """The text of every SubmitReq the mock recorded (our test texts are ``m<i>``)."""
    texts = set()
    for e in exchanges:
        if e.direction == "in" and isinstance(e.request, SubmitReq):
            for attachment in e.request.attachments:
                for part in (attachment, *attachment.parts):
                    if part.content_type.startswith("text/plain") and part.data:
                        texts.add(part.data.decode("utf-8", "replace"))
    return texts
