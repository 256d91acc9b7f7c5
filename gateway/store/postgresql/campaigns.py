"""Campaign operations on a shared store, where several instances commit, watch and
clean up bulk sends at once (the SQL is that of ``sqlite/campaign_intake.py`` and
``sqlite/campaigns.py``, which both backends run).

What differs from one process owning the store: a campaign records the instance
committing it, and one left ``preparing`` is removed only when that instance is gone
(its heartbeat older than a lease) or is this instance's previous run, or after
``PREPARING_GIVE_UP_SECONDS`` (never a live peer's request still being committed); and
chunks of a pool with a daily cap take the same per-number advisory locks as
``create_message``, so two chunks committing at once cannot both pass the cap.
"""

from __future__ import annotations

import sqlite3

from gateway.store.campaign_records import ChunkResult, NewCampaign
from gateway.store.records import NewMessage
from gateway.store.sqlite import campaign_intake as campaigns
from gateway.store.sqlite.campaign_ops import CampaignOps


def lock_pool_numbers(conn: sqlite3.Connection, pool: str, numbers: tuple[str, ...]) -> None:
    """The advisory locks of ``create_message``'s cap check, for a whole chunk in one
    statement, taken in the same (code point) order so the two never deadlock."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext(k)) FROM (SELECT DISTINCT "
        '(?::text || n) COLLATE "C" AS k FROM unnest(?::text[]) AS n ORDER BY k) AS keys',
        (f"pool:{pool}:", list(numbers)),
    )


class SharedCampaignOps(CampaignOps):
    """``CampaignOps`` for a store shared by several instances (see the module docstring)."""

    instance_id: str
    lease_seconds: float

    async def create_campaign(self, new: NewCampaign) -> tuple[str, bool]:
        return await self.write(
            lambda conn: campaigns.create_campaign(conn, new, created_by=self.instance_id)
        )

    async def add_campaign_chunk(self, campaign_id: str, chunk: NewMessage) -> ChunkResult:
        if chunk.pool_rules is None or chunk.pool_rules.max_per_day is None:
            return await super().add_campaign_chunk(campaign_id, chunk)
        pool = chunk.pool_rules.pool

        def op(conn: sqlite3.Connection) -> ChunkResult:
            lock_pool_numbers(conn, pool, chunk.recipients)
            return campaigns.add_campaign_chunk(conn, campaign_id, chunk)

        return await self.write(op)

    async def discard_preparing_campaigns(
        self, created_before: float, *, at_start: bool = True
    ) -> int:
        live_since = created_before - self.lease_seconds
        return await self.write(
            lambda conn: campaigns.discard_preparing(
                conn, created_before, owner=self.instance_id, at_start=at_start,
                live_since=live_since,
            )
        )  # fmt: skip
