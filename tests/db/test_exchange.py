"""exchange: a worker's finishes and its next claims in one statement, on a real database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.queue import (
    ClaimLimits,
    Finish,
    NewTask,
    exchange,
    insert_tasks,
    running_status_for,
)
from reelqueue.statuses import Kind, StatusTable

TABLE = StatusTable()
LEASE = timedelta(seconds=30)
OPEN = ClaimLimits(channel_caps={"science": 100, "history": 100}, step_caps={})
WAITING_STEPS = {row.status: row.step for row in TABLE if row.kind is Kind.WAITING and row.step}


@pytest.fixture
async def driver(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def add(engine: AsyncEngine, status: str = "queued", channel: str = "science") -> int:
    """One task in `status`, created now (so later calls make later tasks)."""
    new = NewTask(
        notion_page_id=str(uuid.uuid4()), data_source_id="ds", channel=channel, title="A video",
        topic="", story_direction="", priority=1, status=status, notion_seen={},
    )  # fmt: skip
    async with engine.begin() as conn:
        (task,) = await insert_tasks(conn, [new], actor="test", table=TABLE)
    return task.id


async def events(driver: asyncpg.Connection, task_id: int) -> list[tuple[Any, ...]]:
    rows = await driver.fetch(
        "SELECT from_status, to_status, actor, reason FROM task_events"
        " WHERE task_id = $1 ORDER BY id",
        task_id,
    )
    return [tuple(row) for row in rows][1:]


@pytest.mark.parametrize("status", sorted(WAITING_STEPS))
async def test_each_runnable_status_starts_its_own_step(
    engine: AsyncEngine, driver: asyncpg.Connection, status: str
) -> None:
    task_id = await add(engine, status)
    done = await exchange(driver, worker_id="w1", claim=5, lease=LEASE, limits=OPEN)
    step = WAITING_STEPS[status]
    assert [(c.task.id, c.step, c.task.status) for c in done.claimed] == [
        (task_id, step, running_status_for(step))
    ]
    assert await events(driver, task_id) == [
        (status, running_status_for(step), "worker:w1", f"claimed for {step}")
    ]
    outbox = await driver.fetchval(
        "SELECT properties FROM outbox WHERE task_id = $1 ORDER BY id DESC LIMIT 1", task_id
    )
    assert running_status_for(step) in outbox


async def test_a_requeued_task_resumes_at_its_failed_step(
    engine: AsyncEngine, driver: asyncpg.Connection
) -> None:
    task_id = await add(engine, "queued")
    await driver.execute("UPDATE tasks SET resume_step = 'audio' WHERE id = $1", task_id)
    done = await exchange(driver, worker_id="w1", claim=1, lease=LEASE, limits=OPEN)
    assert [(c.step, c.task.status) for c in done.claimed] == [("audio", "generating_audio")]


async def test_finishing_and_claiming_go_together_and_only_for_the_holder(
    engine: AsyncEngine, driver: asyncpg.Connection
) -> None:
    first, second = await add(engine), await add(engine)
    (held,) = (await exchange(driver, worker_id="w1", claim=1, lease=LEASE, limits=OPEN)).claimed
    assert held.task.id == first
    finish = Finish(
        held.task, held.task.status, [("assets_ready", "assets done")], {"outputs": {"assets": {}}}
    )
    stranger = await exchange(driver, worker_id="w2", finished=[finish], lease=LEASE, limits=OPEN)
    assert stranger.recorded == [False], "only the worker holding a task may finish it"

    done = await exchange(
        driver, worker_id="w1", finished=[finish], claim=1, lease=LEASE, limits=OPEN
    )
    assert done.recorded == [True]
    assert [c.task.id for c in done.claimed] == [second]
    row = await driver.fetchrow("SELECT status, locked_by, outputs FROM tasks WHERE id = $1", first)
    assert (row["status"], row["locked_by"]) == ("assets_ready", None)
    assert '"assets"' in row["outputs"]
    assert (await events(driver, first))[-1] == (
        "generating_assets", "assets_ready", "worker:w1", "assets done"
    )  # fmt: skip


async def test_a_step_at_its_cap_is_passed_over_not_waited_behind(
    engine: AsyncEngine, driver: asyncpg.Connection
) -> None:
    for _ in range(3):
        await add(engine, "composites_ready")  # the oldest: all for the video step
    later = await add(engine, "queued")
    capped = ClaimLimits(channel_caps={"science": 100}, step_caps={"video": 1})
    first = await exchange(driver, worker_id="w1", claim=10, lease=LEASE, limits=capped)
    assert sorted(c.step for c in first.claimed) == ["assets", "video"]
    assert later in [c.task.id for c in first.claimed]
    again = await exchange(driver, worker_id="w2", claim=10, lease=LEASE, limits=capped)
    assert again.claimed == [], "the video cap is full across workers"


async def test_channel_caps_hold_across_workers_and_a_freed_slot_is_open_to_all(
    engine: AsyncEngine, driver: asyncpg.Connection
) -> None:
    for _ in range(4):
        await add(engine, channel="history")
    capped = ClaimLimits(channel_caps={"history": 2}, step_caps={})
    one = await exchange(driver, worker_id="w1", claim=5, lease=LEASE, limits=capped)
    two = await exchange(driver, worker_id="w2", claim=5, lease=LEASE, limits=capped)
    assert (len(one.claimed), len(two.claimed)) == (2, 0)
    held = one.claimed[0].task
    finish = Finish(held, held.status, [("assets_ready", "assets done")], {})
    again = await exchange(
        driver, worker_id="w1", finished=[finish], claim=5, lease=LEASE, limits=capped
    )
    assert again.recorded == [True]
    assert again.claimed == [], "a worker at the cap does not refill its own slot unseen"
    other = await exchange(driver, worker_id="w2", claim=5, lease=LEASE, limits=capped)
    assert len(other.claimed) == 1, "the freed slot goes to whoever claims next"
