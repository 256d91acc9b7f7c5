"""The Store protocol's campaign operations over SQL connections (mixed into
``SqlOperations``; ``postgresql/campaigns.py`` overrides what a shared store does
differently)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

from gateway.store.campaign_records import (
    CampaignRecipient,
    CampaignRecord,
    CancelPage,
    ChunkResult,
    InvalidLine,
    NewCampaign,
)
from gateway.store.records import NewMessage
from gateway.store.sqlite.campaign_intake import (
    add_campaign_chunk,
    create_campaign,
    discard_campaign,
    discard_preparing,
    open_campaign,
)
from gateway.store.sqlite.campaigns import (
    campaign_progress,
    campaign_recipients,
    cancel_campaign_page,
    load_campaign,
)

T = TypeVar("T")


class CampaignOps:
    """The Store protocol's campaign operations, mixed into ``SqliteStore`` (which
    provides ``read`` and ``write``: each call one operation of its group commit)."""

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    async def create_campaign(self, new: NewCampaign) -> tuple[str, bool]:
        return await self.write(lambda conn: create_campaign(conn, new))

    async def add_campaign_chunk(self, campaign_id: str, chunk: NewMessage) -> ChunkResult:
        return await self.write(lambda conn: add_campaign_chunk(conn, campaign_id, chunk))

    async def open_campaign(
        self, campaign_id: str, invalid: list[InvalidLine], invalid_count: int, now: float
    ) -> CampaignRecord:
        return await self.write(
            lambda conn: open_campaign(conn, campaign_id, invalid, invalid_count, now)
        )

    async def discard_campaign(self, campaign_id: str) -> bool:
        return await self.write(lambda conn: discard_campaign(conn, campaign_id))

    async def discard_preparing_campaigns(
        self, created_before: float, *, at_start: bool = True
    ) -> int:
        """One process owns this store: what is ``preparing`` at its start was left by its
        previous run; while it runs, every such campaign is a request being committed."""
        if not at_start:
            return 0
        return await self.write(lambda conn: discard_preparing(conn, created_before))

    async def get_campaign(self, campaign_id: str) -> CampaignRecord | None:
        return await self.read(lambda conn: load_campaign(conn, campaign_id))

    async def campaign_recipients(
        self, campaign_id: str, status: str | None, after: tuple[int, int] | None, limit: int
    ) -> list[CampaignRecipient]:
        return await self.read(
            lambda conn: campaign_recipients(conn, campaign_id, status, after, limit)
        )

    async def cancel_campaign_page(
        self, campaign_id: str, after: int, limit: int, now: float
    ) -> CancelPage:
        return await self.write(
            lambda conn: cancel_campaign_page(conn, campaign_id, after, limit, now)
        )

    async def campaign_progress(self, now: float) -> list[tuple[str, str]]:
        return await self.write(lambda conn: campaign_progress(conn, now))
