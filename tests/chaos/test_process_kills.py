"""kill -9 of reelqueue's own processes mid-batch: the batch still ends Published, once."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.chaos.harness import Chaos, final_check, is_leader, kill_9, wait_for

pytestmark = pytest.mark.timeout(120)


async def test_run_killed_mid_batch_and_started_again_finishes_the_batch(chaos: Chaos) -> None:
    first = chaos.start_run(workers=3)
    await asyncio.to_thread(first.wait_found)
    pages = await chaos.queue_batch(16)
    await chaos.mid_batch()

    kill_9(first)
    before = await chaos.last_event_id()
    chaos.start_run(workers=3)
    restarted = time.monotonic()

    async def progressed() -> bool:
        return await chaos.last_event_id() > before

    await chaos.heal("kill -9 run", restarted, progressed)
    await final_check(chaos, pages)


async def test_a_worker_killed_mid_step_leaves_its_tasks_to_the_others(chaos: Chaos) -> None:
    run = chaos.start_run(workers=0)
    await asyncio.to_thread(run.wait_found)
    doomed = chaos.start_worker(concurrency=2)
    doomed_id = await asyncio.to_thread(doomed.wait_found)
    chaos.start_worker(concurrency=2)
    pages = await chaos.queue_batch(16)
    await chaos.mid_batch()

    async def holds_a_task() -> bool:
        return bool(
            await chaos.fetchval("SELECT count(*) FROM tasks WHERE locked_by = $1", doomed_id)
        )

    await wait_for(holds_a_task, within_s=20, what="the worker holding a task")
    kill_9(doomed)
    killed = time.monotonic()
    before = await chaos.last_event_id()
    held = [
        row["id"]
        for row in await chaos.fetch("SELECT id FROM tasks WHERE locked_by = $1", doomed_id)
    ]
    assert held, "the worker finished its tasks before it was killed"

    async def rescued() -> bool:
        return bool(
            await chaos.fetchval(
                "SELECT count(*) FROM task_events WHERE id > $1 AND task_id = ANY($2::bigint[])",
                before,
                held,
            )
        )

    await chaos.heal("kill -9 worker", killed, rescued)
    await final_check(chaos, pages)


async def test_the_leader_killed_among_two_replicas_hands_over_to_the_other(chaos: Chaos) -> None:
    replicas = [chaos.start_run(workers=2), chaos.start_run(workers=2)]
    urls = [await asyncio.to_thread(replica.wait_found) for replica in replicas]

    async def one_leads() -> bool:
        return sum([await is_leader(url) for url in urls]) == 1

    await wait_for(one_leads, within_s=20, what="one leader")
    pages = await chaos.queue_batch(16)
    await chaos.mid_batch()
    leader = 0 if await is_leader(urls[0]) else 1
    kill_9(replicas[leader])
    killed = time.monotonic()
    writes = await chaos.page_writes()

    async def pushed_again() -> bool:
        return await chaos.page_writes() > writes

    await chaos.heal("kill -9 leader", killed, pushed_again)
    assert await is_leader(urls[1 - leader])
    await final_check(chaos, pages)
