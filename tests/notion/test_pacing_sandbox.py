"""The limiter really paces: 150 requests from 50 callers against a sandbox of the same rate.

The rate is ten times Notion's 3/s so the test takes seconds; how close to the ideal time
the pacing comes is measured in bench/limiter.py, not here.
"""

from __future__ import annotations

import asyncio
import time

from reelqueue.notion import NotionClient
from reelqueue.sandbox import SandboxAdmin

CALLERS = 50
REQUESTS_EACH = 3
RATE = 30.0
BURST = 3


async def test_50_callers_making_150_requests_get_no_429_and_never_outrun_the_rate(
    sandbox: SandboxAdmin,
) -> None:
    info = await sandbox.reset(rps=RATE, burst=6)
    assert info["data_source_ids"] == [sandbox.data_source_id]
    pages = [p["id"] for p in await sandbox.pages()]
    total = CALLERS * REQUESTS_EACH
    async with NotionClient(
        sandbox.token, base_url=sandbox.base_url, rate_limit=RATE, burst=BURST
    ) as client:
        # The bucket is shared by every client of this token; let it fill after earlier tests.
        await asyncio.sleep(max(0.0, (BURST - client.limiter.available()) / RATE))

        async def caller(number: int) -> None:
            await client.query_data_source(sandbox.data_source_id, page_size=5)
            for step in range(1, REQUESTS_EACH):
                await client.retrieve_page(pages[(number + step) % len(pages)])

        started = time.monotonic()
        await asyncio.gather(*(caller(n) for n in range(CALLERS)))
        elapsed = time.monotonic() - started
        sent = client.stats.as_dict()
    served = await sandbox.stats()
    ideal = (total - client.limiter.burst) / RATE
    print(
        f"\n150-request pacing: elapsed {elapsed:.2f} s, ideal {ideal:.2f} s "
        f"({elapsed / ideal - 1:+.1%}); 429s: client {sent['rate_limited']}, "
        f"sandbox {served['rate_limited']}"
    )
    assert served["rate_limited"] == 0
    assert sent["rate_limited"] == 0
    assert sent["retries"] == 0
    assert sum(sum(c.values()) for c in served["requests"].values()) == total
    assert client.stats.total == total
    assert elapsed >= ideal - 0.05, "no faster than the rate allows"
