"""The remaining operations of the ``Store`` protocol over SQL connections: reports,
inbound MMS, opt-outs, sender pools, the webhook outbox, retention, the console and the
SMS fallback (see ``batch_operations.py`` for how a backend runs them).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.errors import StoreError
from gateway.store.history import MessageHistory, MessageQuery
from gateway.store.records import (
    ConsentChange,
    ConsentRecord,
    InboundRow,
    MessageRecord,
    NewMessage,
    OutboxEvent,
    ReportResult,
    ReportRow,
    ShortLink,
    SmsJob,
)
from gateway.store.sqlite import (
    events,
    history,
    inbound,
    pools,
    reports,
    retention,
    sms,
    suppressions,
)
from gateway.store.sqlite.batch_operations import BatchOperations
from gateway.store.sqlite.campaign_ops import CampaignOps


class SqlOperations(BatchOperations, CampaignOps):
    """Every ``Store`` operation but the backend's lifecycle, ``read`` and ``write``."""

    # -- reports, inbound messages, opt-outs ----------------------------------------------------
    async def store_report(self, report: ReportRow) -> ReportResult:
        return await self.write(lambda conn: reports.store_report(conn, report))

    async def report_counts(self) -> dict[str, int]:
        return await self.read(reports.report_counts)

    async def store_inbound(
        self,
        row: InboundRow,
        event: tuple[str, dict[str, Any]] | None,
        *,
        reply: NewMessage | None = None,
    ) -> tuple[str, bool]:
        """Store an inbound MMS with its opt-out change, event and ``reply`` (an outbound
        message created in the same transaction, only when the inbound one is new)."""
        return await self.write(lambda conn: inbound.store_inbound(conn, row, event, reply))

    async def get_inbound(self, inbound_id: str) -> dict[str, Any] | None:
        return await self.read(lambda conn: inbound.get_inbound(conn, inbound_id))

    async def list_inbound(
        self, api_key: str, limit: int, before: str | None
    ) -> list[dict[str, Any]]:
        return await self.read(lambda conn: inbound.list_inbound(conn, api_key, limit, before))

    async def media_type_of(self, sha256: str) -> str | None:
        return await self.read(lambda conn: inbound.media_type_of(conn, sha256))

    async def suppressed_numbers(self, pairs: list[tuple[str, str]]) -> list[str]:
        return await self.read(lambda conn: suppressions.suppressed_numbers(conn, pairs))

    # -- sender pools and consent -----------------------------------------------------------
    async def set_consent(self, change: ConsentChange) -> ConsentRecord:
        def op(conn: sqlite3.Connection) -> ConsentRecord:
            pools.set_consent(conn, change)
            record = pools.get_consent(conn, change.pool, change.number)
            if record is None:  # pragma: no cover - same transaction
                raise StoreError("consent record vanished")
            return record

        return await self.write(op)

    async def get_consent(self, pool: str, number: str) -> ConsentRecord | None:
        return await self.read(lambda conn: pools.get_consent(conn, pool, number))

    async def sticky_senders(self, pool: str, numbers: list[str]) -> dict[str, str]:
        return await self.read(lambda conn: pools.sticky_senders(conn, pool, numbers))

    # -- webhook outbox ---------------------------------------------------------------------------
    async def sync_webhook_targets(self, targets: dict[str, str]) -> None:
        await self.write(lambda conn: events.sync_webhook_targets(conn, targets))

    async def due_events(
        self, now: float, limit: int, busy_streams: tuple[str, ...]
    ) -> list[OutboxEvent]:
        return await self.read(lambda conn: events.due_events(conn, now, limit, busy_streams))

    async def next_event_at(self) -> float | None:
        return await self.read(events.next_event_at)

    async def finish_event(self, row_id: int, state: str, error: str | None, now: float) -> None:
        await self.write(lambda conn: events.finish_event(conn, row_id, state, error, now))

    async def retry_event(self, row_id: int, next_at: float, error: str, now: float) -> None:
        await self.write(lambda conn: events.retry_event(conn, row_id, next_at, error, now))

    async def dead_letters(self, api_key: str | None, limit: int) -> list[dict[str, Any]]:
        return await self.read(lambda conn: events.dead_letters(conn, api_key, limit))

    async def outbox_counts(self) -> dict[str, int]:
        return await self.read(events.outbox_counts)

    # -- retention -------------------------------------------------------------------------------
    async def purge_expired(self, cutoff: float, limit: int) -> dict[str, int]:
        """Delete up to ``limit`` rows of each kind older than ``cutoff`` (one transaction
        per kind, so a purge never holds the store for long); counts by kind."""
        steps = (
            ("messages", retention.purge_messages),
            ("campaigns", retention.purge_campaigns),
            ("inbound", retention.purge_inbound),
            ("events", retention.purge_events),
            ("reports", retention.purge_unmatched_reports),
        )
        counts = {}
        for kind, step in steps:
            counts[kind] = await self.write(
                lambda conn, step=step: step(conn, cutoff, limit)  # type: ignore[misc]
            )
        # Housekeeping, not retention: the daily cap only looks 24 h back (consent and its
        # history are evidence and are never purged).
        await self._purge_pool_sends(limit)
        return counts

    async def _purge_pool_sends(self, limit: int) -> int:
        return await self.write(lambda conn: pools.purge_pool_sends(conn, limit))

    async def media_in_use(self, digests: list[str], created_before: float) -> set[str]:
        return await self.read(lambda conn: retention.media_in_use(conn, digests, created_before))

    # -- a cluster of one ------------------------------------------------------------------------
    # An SQLite file belongs to one process: the local token buckets are the route's, and
    # this instance is the only one.
    async def heartbeat(self, instance_id: str, now: float) -> None:  # noqa: ARG002 - Store API
        return None

    async def live_instances(self, since: float) -> int:  # noqa: ARG002 - Store API
        return 1

    async def leave(self, instance_id: str) -> None:  # noqa: ARG002 - Store API
        return None

    async def take_send_token(self, route: str, rate: float, burst: float) -> float:  # noqa: ARG002 - Store API
        return 0.0

    # -- operator console ---------------------------------------------------------------------
    async def search_messages(self, query: MessageQuery) -> list[MessageRecord]:
        return await self.read(lambda conn: history.search_messages(conn, query))

    async def message_history(self, message_id: str) -> MessageHistory | None:
        return await self.read(lambda conn: history.message_history(conn, message_id))

    async def recent_inbound(self, limit: int) -> list[dict[str, Any]]:
        return await self.read(lambda conn: history.recent_inbound(conn, limit))

    async def replay_dead_letter(self, event_id: str, now: float) -> bool:
        return await self.write(lambda conn: history.replay_dead_letter(conn, event_id, now))

    # -- SMS fallback and short links (DESIGN.md §13) ----------------------------------------
    async def sync_sms_routes(self, causes: dict[str, tuple[str, ...]]) -> None:
        await self.write(lambda conn: sms.sync_routes(conn, causes))

    async def claim_sms(self, now: float, limit: int) -> list[SmsJob]:
        return await self.write(lambda conn: sms.claim(conn, now, limit))

    async def next_sms_at(self) -> float | None:
        return await self.read(sms.next_due)

    async def sms_sent(self, intent_id: int, segments: int, coding: str, now: float) -> None:
        await self.write(lambda conn: sms.sent(conn, intent_id, segments, coding, now))

    async def sms_retry(self, intent_id: int, next_at: float, error: str, now: float) -> None:
        await self.write(lambda conn: sms.retry(conn, intent_id, next_at, error, now))

    async def sms_failed(self, intent_id: int, error: str, now: float) -> None:
        await self.write(lambda conn: sms.give_up(conn, intent_id, error, now))

    async def requeue_sms_sending(self, due: float, now: float) -> int:
        return await self.write(lambda conn: sms.requeue_sending(conn, due, now))

    async def sms_report(self, intent_id: int, dlr_type: int, now: float) -> str:
        return await self.write(lambda conn: sms.apply_dlr(conn, intent_id, dlr_type, now))

    async def short_link(self, message_id: str, code: str, expires_at: float, now: float) -> str:
        return await self.write(
            lambda conn: sms.short_link(conn, message_id, code, expires_at, now)
        )

    async def resolve_short_link(self, code: str, now: float) -> ShortLink | None:
        return await self.read(lambda conn: sms.resolve(conn, code, now))
