"""The webhook inbox does not grow for ever: events taken in long ago are deleted."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.ingest.applied import INBOX_KEEP, prune_inbox
from tests.fixtures.service import StartService, fetchval, until

ROWS = [
    # event id, received this long ago, taken in?
    ("old-taken-in", timedelta(days=8), True),
    ("old-not-taken-in", timedelta(days=8), False),
    ("recent-taken-in", timedelta(days=1), True),
    ("recent-not-taken-in", timedelta(minutes=1), False),
]


async def _insert(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for event_id, age, taken_in in ROWS:
            await conn.execute(
                text(
                    "INSERT INTO webhook_inbox (event_id, event_type, payload, received_at,"
                    " processed_at) VALUES (:id, 'page.properties_updated', '{}'::jsonb,"
                    " now() - CAST(:age AS interval),"
                    " CASE WHEN :taken THEN now() - CAST(:age AS interval) END)"
                ),
                {"id": event_id, "age": age, "taken": taken_in},
            )


async def test_the_leader_prunes_the_inbox_at_each_reconcile(
    engine: AsyncEngine, database_url: str, start_service: StartService
) -> None:
    await _insert(engine)
    await start_service(reconcile_interval_s=0.5)
    sql = "SELECT count(*) FROM webhook_inbox WHERE event_id = 'old-taken-in'"

    async def pruned() -> bool:
        return await fetchval(database_url, sql) == 0

    await until(pruned, within_s=15)
    assert await fetchval(database_url, "SELECT count(*) FROM webhook_inbox") >= 3


async def test_only_events_taken_in_longer_ago_than_the_keep_are_deleted(
    engine: AsyncEngine,
) -> None:
    await _insert(engine)
    assert timedelta(days=2) <= INBOX_KEEP, "a redelivery within Notion's retries is recognised"
    assert await prune_inbox(engine) == 1
    async with engine.connect() as conn:
        left = set((await conn.scalars(text("SELECT event_id FROM webhook_inbox"))).all())
    assert left == {"old-not-taken-in", "recent-taken-in", "recent-not-taken-in"}
    assert await prune_inbox(engine) == 0
