"""A step's heartbeat on a real database: it extends the step's lease, and says when the
task was taken away (abandoning the step)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.pipeline import LeaseLost
from reelqueue.pipeline.heartbeat import Heartbeats
from reelqueue.pipeline.held import HeldTasks
from reelqueue.queue.supervise import LoopHealth
from reelqueue.statuses import StatusTable
from tests.fixtures.service import until
from tests.pipeline.test_worker import AUTO, queue, scalar


async def held_by(engine: AsyncEngine, worker_id: str) -> int:
    """One task, running its first step under `worker_id`'s 30 s lease."""
    (page,) = await queue(engine, 1, AUTO)
    async with engine.begin() as conn:
        return int(
            await conn.scalar(
                text(
                    "UPDATE tasks SET status = 'generating_assets', locked_by = :w,"
                    " lease_expires_at = now() + interval '30 seconds', heartbeat_at = NULL"
                    " WHERE notion_page_id = :p RETURNING id"
                ),
                {"w": worker_id, "p": page},
            )
        )


async def test_a_steps_heartbeat_extends_its_lease_and_says_when_it_was_taken_away(
    engine: AsyncEngine,
) -> None:
    task_id = await held_by(engine, "w1")
    abandoned = asyncio.Event()

    async def step() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            abandoned.set()
            raise

    held = HeldTasks(1, on_free=lambda: None)
    held.run(task_id, step())
    # Not started: only the step's own heartbeats touch the lease.
    beats = Heartbeats(
        engine,
        held,
        worker_id="w1",
        lease=timedelta(seconds=0.3),
        health=LoopHealth("hb"),
        table=StatusTable(),
    )

    async def extended() -> bool:
        await beats.extend(task_id)
        sql = "SELECT heartbeat_at IS NOT NULL FROM tasks WHERE id = :id"
        return bool(await scalar(engine, sql, id=task_id))

    await until(extended, within_s=10)
    sql = "SELECT lease_expires_at < now() + interval '5 seconds' FROM tasks WHERE id = :id"
    assert await scalar(engine, sql, id=task_id), "the lease now ends one (short) lease ahead"

    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE tasks SET locked_by = 'another' WHERE id = :id"), {"id": task_id}
        )

    async def taken_away() -> bool:
        try:
            await beats.extend(task_id)
        except LeaseLost:
            return True
        return False

    await until(taken_away, within_s=10)
    await asyncio.wait_for(abandoned.wait(), 10)
    with pytest.raises(LeaseLost):
        await beats.extend(task_id)
    assert await scalar(engine, "SELECT locked_by FROM tasks WHERE id = :id", id=task_id) == (
        "another"
    )
