"""exchange: a worker's finishes and its next claims in one statement, on a real database."""

from __future__ import annotations

import asyncio
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
)
from reelqueue.statuses import Kind, StatusTable
from tests.fixtures.service import until

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
        (task_id, step, StatusTable().running_status_for(step))
    ]
    assert await events(driver, task_id) == [
        (status, StatusTable().running_status_for(step), "worker:w1", f"claimed for {step}")
    ]
    outbox = await driver.fetchval(
        "SELECT properties FROM outbox WHERE task_id = $1 ORDER BY id DESC LIMIT 1", task_id
    )
    assert StatusTable().running_status_for(step) in outbox


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


@pytest.fixture
async def workers(database_url: str) -> AsyncIterator[list[asyncpg.Connection]]:
    """Four more connections, each standing for a worker of its own."""
    conns = [await asyncpg.connect(database_url) for _ in range(4)]
    yield conns
    for conn in conns:
        await conn.close()


async def waiting_on_the_claim_lock(driver: asyncpg.Connection, conn: asyncpg.Connection) -> bool:
    """Whether `conn`'s backend is waiting for an advisory lock now."""
    row = await driver.fetchrow(
        "SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE pid = $1",
        conn.get_server_pid(),
    )
    return row is not None and (row["wait_event_type"], row["wait_event"]) == ("Lock", "advisory")


async def test_claims_share_the_lock_while_every_cap_has_room_for_the_whole_fleet(
    engine: AsyncEngine, workers: list[asyncpg.Connection]
) -> None:
    for _ in range(6):
        await add(engine)
    a, b = workers[:2]
    async with a.transaction():
        first = await exchange(
            a, worker_id="a", claim=3, lease=LEASE, limits=OPEN, slots=3, shared=True
        )
        # a's claim is still in flight: b's does not wait for it
        second = await asyncio.wait_for(
            exchange(b, worker_id="b", claim=3, lease=LEASE, limits=OPEN, slots=3, shared=True),
            timeout=10,
        )
    assert (len(first.claimed), len(second.claimed)) == (3, 3)
    assert (first.tight, second.tight) == (False, False)
    assert not {c.task.id for c in first.claimed} & {c.task.id for c in second.claimed}


async def test_near_a_cap_claims_take_the_lock_in_turns(
    engine: AsyncEngine, driver: asyncpg.Connection, workers: list[asyncpg.Connection]
) -> None:
    for _ in range(6):
        await add(engine)
    near = ClaimLimits(channel_caps={"science": 4}, step_caps={})
    a, b = workers[:2]
    early = await exchange(b, worker_id="b", claim=1, lease=LEASE, limits=near, slots=3)
    assert len(early.claimed) == 1
    async with a.transaction():
        first = await exchange(a, worker_id="a", claim=3, lease=LEASE, limits=near, slots=3)
        assert (len(first.claimed), first.tight) == (3, True), "1 running + 6 slots > 4"
        second = asyncio.create_task(
            exchange(b, worker_id="b", claim=2, lease=LEASE, limits=near, slots=3)
        )

        async def b_waits_or_ends() -> bool:
            return second.done() or await waiting_on_the_claim_lock(driver, b)

        await until(b_waits_or_ends, within_s=10, every_s=0.02)
        assert not second.done(), "b claims only after a commits"
    assert (await asyncio.wait_for(second, timeout=10)).claimed == [], "4 at most"


async def test_every_connected_workers_slots_count_until_it_disconnects(
    engine: AsyncEngine, database_url: str, workers: list[asyncpg.Connection]
) -> None:
    big = await asyncpg.connect(database_url)
    caps = ClaimLimits(channel_caps={"science": 12}, step_caps={})
    # An empty queue: the call only tags `big`'s connection with its 10 slots.
    await exchange(big, worker_id="big", claim=10, lease=LEASE, limits=caps, slots=10)
    await add(engine)
    small = workers[0]
    refused = await exchange(
        small, worker_id="small", claim=3, lease=LEASE, limits=caps, slots=3, shared=True
    )
    assert (refused.claimed, refused.tight) == ([], True), "10 + 3 slots could pass a cap of 12"
    big_pid = big.get_server_pid()
    await big.close()
    observer = workers[1]

    async def big_gone() -> bool:
        """The server has ended `big`'s backend: its slots are no longer counted."""
        found = await observer.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", big_pid
        )
        return bool(found == 0)

    await until(big_gone, within_s=10, every_s=0.02)
    again = await exchange(
        small, worker_id="small", claim=3, lease=LEASE, limits=caps, slots=3, shared=True
    )
    assert (len(again.claimed), again.tight) == (1, False)


async def test_leases_of_a_vanished_worker_keep_the_claims_in_turns_and_within_the_cap(
    engine: AsyncEngine, driver: asyncpg.Connection, workers: list[asyncpg.Connection]
) -> None:
    caps = ClaimLimits(channel_caps={"science": 14}, step_caps={})

    async def claim_all(limits: ClaimLimits, *, shared: bool) -> list[Any]:
        turns = [
            exchange(w, worker_id=f"w{i}", claim=3, lease=LEASE, limits=limits, slots=3,
                     shared=shared)
            for i, w in enumerate(workers)
        ]  # fmt: skip
        return list(await asyncio.gather(*turns))

    for _ in range(3):
        await add(engine)
    ghost = await driver.fetch(
        "UPDATE tasks SET status = 'generating_assets', locked_by = 'ghost', locked_at = now()"
        " RETURNING id"
    )
    tagging = await claim_all(caps, shared=False)  # nothing runnable yet: this tags the four
    assert [t.claimed for t in tagging] == [[]] * 4
    for _ in range(27):
        await add(engine)
    # Four workers of 3 slots beside 3 leases nobody will end: 15 could pass the cap.
    tight = await claim_all(caps, shared=True)
    assert all(t.claimed == [] and t.tight for t in tight)
    taken = await claim_all(caps, shared=False)
    assert sum(len(t.claimed) for t in taken) == 14 - len(ghost)
    # The ghost's leases returned, the workers' steps done, a cap with room for the
    # fleet's 12 slots beside what runs: all claim, side by side.
    await driver.execute(
        "UPDATE tasks SET status = 'queued', locked_by = NULL WHERE locked_by = 'ghost'"
    )
    for i, (conn, turn) in enumerate(zip(workers, taken, strict=True)):
        ends = [Finish(c.task, c.task.status, [("assets_ready", "assets done")], {})
                for c in turn.claimed]  # fmt: skip
        await exchange(conn, worker_id=f"w{i}", finished=ends, lease=LEASE, limits=caps)
    roomy = await claim_all(ClaimLimits({"science": 24}, {}), shared=True)
    assert [(len(t.claimed), t.tight) for t in roomy] == [(3, False)] * 4
    running = await driver.fetchval("SELECT count(*) FROM tasks WHERE locked_by IS NOT NULL")
    assert running == 12
