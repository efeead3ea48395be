"""Benchmark: 50 concurrent callers, 150 requests, against a sandbox limited to 3 requests/second.

Side by side in one run: reelqueue's client (one token bucket per token, retries with
Retry-After) and the official SDK alone (its own 429 retries, no limiter). Reports the
elapsed time against the ideal `(requests - burst) / rate`, the 429s the sandbox sent,
and the calls that failed.

    .venv/bin/python -m bench.limiter [--requests 150] [--callers 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from notion_client import AsyncClient

from reelqueue.logs import configure_logging
from reelqueue.notion import NotionClient
from reelqueue.sandbox import SandboxAdmin, SandboxConfig, SandboxServer

RATE, SANDBOX_BURST, CLIENT_BURST = 3.0, 6, 3


async def drive(
    calls: int, callers: int, one: Callable[[str], Awaitable[Any]], page: str
) -> dict[str, int]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(calls):
        queue.put_nowait(n)
    outcome = {"ok": 0, "failed": 0}

    async def caller() -> None:
        while not queue.empty():
            queue.get_nowait()
            try:
                await one(page)
                outcome["ok"] += 1
            except Exception:  # the benchmark counts any failure, whatever its kind
                outcome["failed"] += 1

    await asyncio.gather(*(caller() for _ in range(callers)))
    return outcome


async def measure(name: str, sandbox: SandboxServer, calls: int, callers: int) -> dict[str, Any]:
    admin = SandboxAdmin(sandbox.base_url)
    await admin.reset(videos=5, rps=RATE, burst=SANDBOX_BURST)
    page = (await admin.pages())[0]["id"]
    started = time.monotonic()
    if name == "reelqueue":
        async with NotionClient(
            sandbox.token, base_url=sandbox.base_url, rate_limit=RATE, burst=CLIENT_BURST
        ) as client:
            outcome = await drive(calls, callers, client.retrieve_page, page)
            client_429s = client.stats["rate_limited"]
    else:
        sdk = AsyncClient(auth=sandbox.token, base_url=sandbox.base_url)
        try:
            outcome = await drive(calls, callers, lambda p: sdk.pages.retrieve(page_id=p), page)
        finally:
            await sdk.aclose()
        client_429s = None
    elapsed = time.monotonic() - started
    ideal = (calls - CLIENT_BURST) / RATE
    stats = await admin.stats()
    await admin.aclose()
    return {
        "run": "limiter",
        "client": name,
        "requests": calls,
        "callers": callers,
        "elapsed_s": round(elapsed, 2),
        "ideal_s": round(ideal, 2),
        "elapsed_over_ideal": round(elapsed / ideal, 3),
        "rate_limited_sent_by_sandbox": stats["rate_limited"],
        "rate_limited_seen_by_client": client_429s,
        "succeeded": outcome["ok"],
        "failed": outcome["failed"],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=150)
    parser.add_argument("--callers", type=int, default=50)
    args = parser.parse_args()
    configure_logging("error", "json")
    config = SandboxConfig(rate_model="bucket", rps=RATE, burst=SANDBOX_BURST)
    with SandboxServer(config) as sandbox:
        ours = await measure("reelqueue", sandbox, args.requests, args.callers)
        print(json.dumps(ours), flush=True)
        bare = await measure("official_sdk_alone", sandbox, args.requests, args.callers)
        print(json.dumps(bare), flush=True)
    print(
        json.dumps(
            {
                "run": "summary",
                "reelqueue_within_10pct_of_ideal": ours["elapsed_over_ideal"] <= 1.10,
                "reelqueue_429s": ours["rate_limited_sent_by_sandbox"],
                "sdk_alone_429s": bare["rate_limited_sent_by_sandbox"],
                "sdk_alone_over_reelqueue_elapsed": round(bare["elapsed_s"] / ours["elapsed_s"], 2),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main())
