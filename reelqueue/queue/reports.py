"""Read-only views of the queue for people: counts by status and channel."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.db.models import TASKS

__all__ = ["status_counts"]


async def status_counts(conn: AsyncConnection) -> list[tuple[str, str, int]]:
    """(status, channel, count) for every pair present, by status then channel."""
    rows = await conn.execute(
        select(TASKS.c.status, TASKS.c.channel, func.count())
        .group_by(TASKS.c.status, TASKS.c.channel)
        .order_by(TASKS.c.status, TASKS.c.channel)
    )
    return [(r[0], r[1], int(r[2])) for r in rows.all()]
