"""Which webhook events a read has taken in: inbox rows are marked processed once covered.

An event in the inbox stands for a creator's edit that push-back must not overwrite
before ingest has read it. A full read that started after the event was recorded has
seen that edit, so the read marks every event recorded before it began; an event whose
edit happened before a completed read began is covered too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.db.models import WEBHOOK_INBOX

__all__ = ["INBOX_KEEP", "inbox_high_water", "mark_applied", "mark_applied_before", "prune_inbox"]

# How long taken-in events stay, so a redelivery is still recognised: Notion retries a
# failed delivery for about two days (8 attempts, doubling from about 11 minutes).
INBOX_KEEP = timedelta(days=7)


async def inbox_high_water(engine: AsyncEngine) -> int:
    """The id of the newest inbox row (0 for none): a read starting now covers up to it."""
    async with engine.connect() as conn:
        value = await conn.scalar(select(func.max(WEBHOOK_INBOX.c.id)))
    return int(value or 0)


async def mark_applied(engine: AsyncEngine, upto: int) -> int:
    """Mark unprocessed events up to inbox id `upto` as taken in; how many were marked."""
    async with engine.begin() as conn:
        marked = await conn.execute(
            update(WEBHOOK_INBOX)
            .where(WEBHOOK_INBOX.c.processed_at.is_(None), WEBHOOK_INBOX.c.id <= upto)
            .values(processed_at=func.now())
        )
    return int(marked.rowcount or 0)


def _event_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


async def mark_applied_before(engine: AsyncEngine, moment: datetime) -> int:
    """Mark unprocessed events whose edit time is before `moment` (a covered read's start)."""
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                select(WEBHOOK_INBOX.c.id, WEBHOOK_INBOX.c.payload["timestamp"].astext).where(
                    WEBHOOK_INBOX.c.processed_at.is_(None)
                )
            )
        ).all()
        covered = [
            row[0] for row in rows if (at := _event_time(row[1])) is not None and at < moment
        ]
        if not covered:
            return 0
        await conn.execute(
            update(WEBHOOK_INBOX)
            .where(WEBHOOK_INBOX.c.id.in_(covered))
            .values(processed_at=func.now())
        )
    return len(covered)


async def prune_inbox(engine: AsyncEngine, keep: timedelta = INBOX_KEEP) -> int:
    """Delete events taken in longer than `keep` ago; how many went."""
    async with engine.begin() as conn:
        pruned = await conn.execute(
            delete(WEBHOOK_INBOX).where(
                WEBHOOK_INBOX.c.processed_at.is_not(None),
                WEBHOOK_INBOX.c.received_at < func.now() - keep,
            )
        )
    return int(pruned.rowcount or 0)
