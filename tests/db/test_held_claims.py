"""A task whose page is missing is never claimed, for a new step or a retry, until it is back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.config import Settings
from reelqueue.pipeline import failure_outcome
from reelqueue.pipeline.reaper import Reaper
from reelqueue.queue import (
    TASKS_CHANNEL,
    ClaimLimits,
    Finish,
    NewTask,
    TaskRecord,
    exchange,
    hold_moved,
    insert_tasks,
    release_found,
)
from reelqueue.statuses import Kind, StatusTable
from tests.fixtures.service import until

TABLE = StatusTable()
LEASE = timedelta(seconds=30)
OPEN = ClaimLimits(channel_caps={"science": 100}, step_caps={})
WAITING_STEPS = {row.status: row.step for row in TABLE if row.kind is Kind.WAITING and row.step}
MARKS = ("moved", "deleted", "unshared")


@pytest.fixture
async def driver(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def add(engine: AsyncEngine, status: str = "queued") -> TaskRecord:
    new = NewTask(
        notion_page_id=str(uuid.uuid4()), data_source_id="ds", channel="science", title="A video",
        topic="", story_direction="", priority=1, status=status, notion_seen={},
    )  # fmt: skip
    async with engine.begin() as conn:
        (task,) = await insert_tasks(conn, [new], actor="test", table=TABLE)
    return task


async def hold(engine: AsyncEngine, task: TaskRecord) -> None:
    async with engine.begin() as conn:
        assert await hold_moved(conn, {task.notion_page_id: "a page outside"}, TABLE) == 1


async def release(engine: AsyncEngine, task: TaskRecord) -> None:
    async with engine.begin() as conn:
        assert await release_found(conn, [task.notion_page_id], TABLE) == 1


async def claim(driver: asyncpg.Connection, worker: str = "w1") -> list[tuple[int, str | None]]:
    done = await exchange(driver, worker_id=worker, claim=100, lease=LEASE, limits=OPEN)
    return [(c.task.id, c.step) for c in done.claimed]


async def fail_transiently(
    driver: asyncpg.Connection, task: TaskRecord, *, retry_base_s: float, backoff: bool
) -> None:
    """The worker holding `task` records a transient failure of its assets step."""
    (row,) = await driver.fetch("SELECT * FROM tasks WHERE id = $1", task.id)
    running = TaskRecord.from_mapping(dict(row.items()))
    outcome = failure_outcome(
        TABLE, step="assets", running_status=running.status, attempts=running.attempts,
        step_attempts=running.step_attempts + 1, max_attempts=5, transient=True,
        message="the model provider timed out", retry_base_s=retry_base_s, backoff=backoff,
    )  # fmt: skip
    finish = Finish(running, running.status, outcome.path, outcome.values)
    done = await exchange(driver, worker_id="w1", finished=[finish], lease=LEASE, limits=OPEN)
    assert done.recorded == [True], "a step running when its page moved out still finishes"


async def test_no_task_whose_page_is_missing_is_claimed_whatever_its_status_or_run_after(
    engine: AsyncEngine, driver: asyncpg.Connection
) -> None:
    for status in WAITING_STEPS:
        for mark in MARKS:
            task = await add(engine, status)
            await driver.execute(
                "UPDATE tasks SET page_missing = $2, run_after = now() - interval '1 hour'"
                " WHERE id = $1",
                task.id,
                mark,
            )
    present = await add(engine, "queued")
    assert await claim(driver) == [(present.id, "assets")]


async def test_a_step_failing_while_its_page_is_held_is_retried_only_once_the_page_is_back(
    engine: AsyncEngine, driver: asyncpg.Connection
) -> None:
    task = await add(engine)
    assert await claim(driver) == [(task.id, "assets")]
    await hold(engine, task)
    await fail_transiently(driver, task, retry_base_s=1.0, backoff=False)  # due at once
    assert await claim(driver, "w2") == [], "no paid retry for a video whose page is gone"

    await release(engine, task)
    assert await claim(driver, "w2") == [(task.id, "assets")]
    row = await driver.fetchrow("SELECT attempts, step_attempts FROM tasks WHERE id = $1", task.id)
    assert (row["attempts"], row["step_attempts"]) == (2, 1), "the retry counts as the second try"


async def test_a_retry_keeps_its_backoff_and_counters_across_a_hold(
    engine: AsyncEngine, driver: asyncpg.Connection
) -> None:
    task = await add(engine)
    assert await claim(driver) == [(task.id, "assets")]
    await hold(engine, task)
    await fail_transiently(driver, task, retry_base_s=3600.0, backoff=True)
    before = await driver.fetchrow(
        "SELECT run_after, attempts, step_attempts FROM tasks WHERE id = $1", task.id
    )
    await release(engine, task)
    after = await driver.fetchrow(
        "SELECT run_after, attempts, step_attempts, page_missing FROM tasks WHERE id = $1", task.id
    )
    assert after["page_missing"] is None
    assert (after["run_after"], after["attempts"], after["step_attempts"]) == tuple(before)
    assert await claim(driver, "w2") == [], "the retry still waits out its backoff"


async def test_a_retry_already_waiting_when_the_page_moves_out_keeps_its_wait(
    engine: AsyncEngine, driver: asyncpg.Connection
) -> None:
    task = await add(engine)
    assert await claim(driver) == [(task.id, "assets")]
    await fail_transiently(driver, task, retry_base_s=3600.0, backoff=True)
    before = await driver.fetchrow(
        "SELECT run_after, attempts, step_attempts FROM tasks WHERE id = $1", task.id
    )
    await hold(engine, task)
    await release(engine, task)
    after = await driver.fetchrow(
        "SELECT run_after, attempts, step_attempts FROM tasks WHERE id = $1", task.id
    )
    assert tuple(after) == tuple(before), "a move out and back does not cut the backoff short"
    assert await claim(driver, "w2") == []


async def test_a_lease_expiring_while_the_page_is_held_is_retried_only_once_it_is_back(
    engine: AsyncEngine, driver: asyncpg.Connection
) -> None:
    task = await add(engine)
    assert await claim(driver) == [(task.id, "assets")]
    await hold(engine, task)
    await driver.execute(
        "UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1", task.id
    )
    assert await Reaper(engine, Settings()).reap() == [task.id]
    assert await claim(driver, "w2") == []
    await release(engine, task)
    assert await claim(driver, "w2") == [(task.id, "assets")]


async def test_a_step_running_when_its_page_moves_out_keeps_its_result_and_the_next_waits(
    engine: AsyncEngine, driver: asyncpg.Connection, database_url: str
) -> None:
    task = await add(engine, "assets_approved")
    ((_, step),) = await claim(driver)
    assert step == "composites"
    await hold(engine, task)
    (row,) = await driver.fetch("SELECT * FROM tasks WHERE id = $1", task.id)
    running = TaskRecord.from_mapping(dict(row.items()))
    finish = Finish(
        running,
        running.status,
        [("composites_ready", "composites done")],
        {"outputs": {"composites": {"frames": 12}}, "step_attempts": 0},
    )
    done = await exchange(driver, worker_id="w1", finished=[finish], lease=LEASE, limits=OPEN)
    assert done.recorded == [True]
    assert await claim(driver, "w2") == [], "the video step does not start while held"
    outputs = await driver.fetchval("SELECT outputs::text FROM tasks WHERE id = $1", task.id)
    assert '"frames": 12' in outputs

    heard: list[str] = []
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener(TASKS_CHANNEL, lambda *_: heard.append("woken"))
        await release(engine, task)

        async def woken() -> bool:
            await listener.execute("SELECT 1")
            return bool(heard)

        await until(woken, within_s=10)  # a task back in the calendar wakes the workers
    finally:
        await listener.close()
    assert await claim(driver, "w2") == [(task.id, "video")]


async def test_a_retry_recorded_while_the_page_is_held_wakes_no_worker(
    engine: AsyncEngine, driver: asyncpg.Connection, database_url: str
) -> None:
    held, present = await add(engine), await add(engine)
    assert sorted(await claim(driver)) == [(held.id, "assets"), (present.id, "assets")]
    await hold(engine, held)
    heard: list[str] = []
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener(
            TASKS_CHANNEL, lambda _c, _p, channel, _m: heard.append(channel)
        )
        await fail_transiently(driver, held, retry_base_s=1.0, backoff=False)
        await fail_transiently(driver, present, retry_base_s=1.0, backoff=False)

        async def woken() -> bool:
            await listener.execute("SELECT 1")  # delivers what the server has sent by now
            return bool(heard)

        # Notifications arrive in commit order: once the second is in, the first was.
        await until(woken, within_s=10)
    finally:
        await listener.close()
    assert heard == [TASKS_CHANNEL], "only the retry that can run wakes the workers"
