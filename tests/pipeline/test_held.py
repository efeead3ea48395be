"""The tasks a worker holds: a stop's drain lets every step running, even one just begun, end."""

from __future__ import annotations

import asyncio

import pytest

from reelqueue.pipeline.held import HeldTasks


@pytest.mark.timeout(30)
async def test_a_drain_waits_for_a_step_begun_while_it_drains() -> None:
    held = HeldTasks(2, on_free=lambda: None)
    may_end = {1: asyncio.Event(), 2: asyncio.Event()}
    ended: list[int] = []

    async def step(task_id: int) -> None:
        await may_end[task_id].wait()
        ended.append(task_id)

    held.run(1, step(1))
    held.close()
    draining = asyncio.create_task(held.drain(60.0, asyncio.Event()))
    await asyncio.sleep(0)  # the drain begins
    held.run(2, step(2))  # claimed by a completion's turn under way at the stop
    may_end[1].set()
    for _ in range(50):  # turns of the loop: enough for a drain that gave up to end
        await asyncio.sleep(0)
    assert ended == [1]
    assert not draining.done(), "the drain gave up on the step begun while it drained"
    may_end[2].set()
    await draining
    assert ended == [1, 2]
