# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Receiving DeliveryReportReq and ReadReplyReq: build the stored row, commit, count, log.

The policy (state table, staleness, number matching) is in ``reports.py``; the SQL in
``gateway/store/``. Reports for MessageIDs we do not know are kept (a fast MMSC's report can
overtake our own record of its SubmitRsp; the store applies it when
that record arrives), answered 1000 so the MMSC does not retry forever, counted and logged.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from gateway.inbound.reports import map_delivery_status, map_read_status
from gateway.store.records import ReportResult, ReportRow
from gateway.store.transitions import HARD_FINAL, SOFT_FINAL

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.ops.metrics import Metrics
    from gateway.store import Store
    from protocol import DateValue, DeliveryReportReq, ReadReplyReq

log = structlog.get_logger("gateway.reports")


def report_time(value: DateValue | None, received_at: float) -> float:
    """The report's own time; a date without a zone is taken as UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return received_at


def masked(number: str | None) -> str | None:
    """Phone numbers in logs: the last four digits only (DESIGN §8)."""
    if not number:
        return number
    return "*" * max(0, len(number) - 4) + number[-4:]


def _dedupe_key(*items: object) -> str:
    return hashlib.sha256(json.dumps(items, default=str).encode()).hexdigest()


#: States that end a recipient's delivery (what the latency metric measures up to).
REPORT_FINAL = HARD_FINAL | SOFT_FINAL


class ReportService:
    def __init__(self, store: Store, metrics: Metrics, clock: Callable[[], float]) -> None:
        self.store = store
        self.metrics = metrics
        self.clock = clock

    async def delivery_report(self, mmsc: str, msg: DeliveryReportReq) -> ReportResult:
        mapping = map_delivery_status(msg.mm_status)
        self.metrics.delivery_reports_total.labels(mmsc=mmsc, mm_status=mapping.label).inc()
        result = await self._store(
            mmsc, "delivery", msg, mapping.state, msg.date, msg.mm_status_extension
        )
        final = result.outcome == "applied" and result.state in REPORT_FINAL
        if final and result.accepted_at is not None:
            self.metrics.delivery_report_latency_seconds.labels(mmsc=mmsc).observe(
                max(0.0, self.clock() - result.accepted_at)
            )
        return result

    async def read_reply(self, mmsc: str, msg: ReadReplyReq) -> ReportResult:
        mapping = map_read_status(msg.mm_status)
        return await self._store(mmsc, "read", msg, mapping.state, msg.time_stamp, None)

    async def _store(
        self,
        mmsc: str,
        kind: str,
        msg: DeliveryReportReq | ReadReplyReq,
        state: str | None,
        date: DateValue | None,
        extension: str | None,
    ) -> ReportResult:
        now = self.clock()
        recipient = msg.recipient.value if msg.recipient else None
        sender = msg.sender.value if msg.sender else None
        row = ReportRow(
            kind=kind,
            mmsc=mmsc,
            dedupe_key=_dedupe_key(
                mmsc, kind, msg.message_id, recipient, sender, msg.mm_status, extension, date
            ),
            mm7_message_id=msg.message_id,
            recipient=recipient,
            sender=sender,
            mm_status=msg.mm_status,
            mm_status_extension=extension,
            status_text=msg.status_text,
            mapped_state=state,
            report_at=report_time(date, now),
            received_at=now,
            transaction_id=msg.transaction_id,
        )
        result = await self.store.store_report(row)
        fields = {
            "kind": kind,
            "mm7_message_id": msg.message_id,
            "mm_status": msg.mm_status,
            "recipient": masked(recipient),
            "outcome": result.outcome,
        }
        if result.outcome == "unmatched":
            self.metrics.unknown_delivery_reports_total.labels(mmsc=mmsc).inc()
            log.warning("report for an unknown MessageID kept", **fields)
        else:
            log.info("report received", message_id=result.message_id, state=result.state, **fields)
        return result
