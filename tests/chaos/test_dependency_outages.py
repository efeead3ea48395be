"""PostgreSQL killed and Notion hanging mid-batch: once they are back, the batch finishes."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.chaos.harness import Chaos, final_check

pytestmark = pytest.mark.timeout(120)
OUTAGE_S = 3.0


async def test_postgresql_killed_and_started_again_mid_batch(chaos: Chaos) -> None:
    run = chaos.start_run(workers=3)
    await asyncio.to_thread(run.wait_found)
    pages = await chaos.queue_batch(16)
    await chaos.mid_batch()
    await asyncio.to_thread(chaos.postgres.kill)
    await asyncio.sleep(1.0)  # the outage itself
    await asyncio.to_thread(chaos.postgres.restart)
    restarted = time.monotonic()
    before = await chaos.last_event_id()
    writes = await chaos.page_writes()

    async def progressed() -> bool:
        return await chaos.last_event_id() > before

    async def pushed_again() -> bool:
        return await chaos.page_writes() > writes

    await chaos.heal("kill -9 PostgreSQL (steps)", restarted, progressed)
    await chaos.heal("kill -9 PostgreSQL (push-back)", restarted, pushed_again)
    await final_check(chaos, pages)


async def test_a_notion_outage_of_hung_requests_mid_batch(chaos: Chaos) -> None:
    run = chaos.start_run(workers=3)
    await asyncio.to_thread(run.wait_found)
    pages = await chaos.queue_batch(16)
    await chaos.mid_batch()

    await chaos.sandbox.set_faults(hang_rate=1.0, hang_max_ms=3_600_000)
    await asyncio.sleep(OUTAGE_S)  # the outage itself
    hung = (await chaos.sandbox.stats())["hung"]
    writes = await chaos.page_writes()
    await chaos.sandbox.set_faults()
    released = time.monotonic()
    assert hung > 0, "no request reached Notion during the outage"

    async def pushed_again() -> bool:
        return await chaos.page_writes() > writes

    await chaos.heal("Notion outage (hung requests)", released, pushed_again)
    await final_check(chaos, pages)
