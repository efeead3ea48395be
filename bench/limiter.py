"""Benchmark: reelqueue's Notion limiter against both of the sandbox's rate models.

Bucket model (Notion's older "3 requests/second, some bursts"; sandbox at 3/s, burst 6):
50 callers make 150 `GET /v1/pages/{id}`, through reelqueue's client (bucket 3/s, burst 3)
and through the official SDK alone (its own 429 retries, no limiter). Ideal time:
`(requests - burst) / rate`.

Window model (Notion's current per-connection budget; sandbox at `--budget` requests per
`--window` seconds, every request taking `--latency-ms`): 50 callers make `--window-requests`
requests through reelqueue's client as deployed (no budget configured: it paces by a
bucket of 6/s, faster than the budget, and must learn the budget from its first 429),
with the budget configured (NOTION_RATE_BUDGET), and through the official SDK alone.
Ideal time: `(ceil(requests / budget) - 1) * window` (each window's budget at once).

Each reelqueue run uses a fresh token of the sandbox's workspace, so nothing learned by
one run helps the next. Prints one JSON line per run and a summary.

    .venv/bin/python -m bench.limiter [--model both|bucket|window] [--callers 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from notion_client import AsyncClient

from reelqueue.logs import configure_logging
from reelqueue.notion import NotionClient
from reelqueue.sandbox import SandboxAdmin, SandboxConfig, SandboxServer

RATE, SANDBOX_BURST, CLIENT_BURST = 3.0, 6, 3
LEARNING_RATE, LEARNING_BURST = 6.0, 6


async def drive(
    calls: int, callers: int, one: Callable[[str], Awaitable[Any]], page: str
) -> dict[str, int]:
    """Make `calls` calls from `callers` concurrent callers; count successes and failures."""
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


async def measure(
    name: str,
    admin: SandboxAdmin,
    reset: dict[str, Any],
    calls: int,
    callers: int,
    ideal: float,
    client_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One run: reset the sandbox, make the calls through one client, report."""
    info = await admin.reset(videos=5, **reset)
    page = (await admin.pages())[0]["id"]
    status: dict[str, Any] | None = None
    started = time.monotonic()
    if client_options is not None:
        token = await admin.issue_token()
        async with NotionClient(token, base_url=info["base_url"], **client_options) as client:
            outcome = await drive(calls, callers, client.retrieve_page, page)
            client_429s: int | None = client.stats["rate_limited"]
            status = client.rate_limit_status().as_dict()
    else:
        sdk = AsyncClient(auth=info["token"], base_url=info["base_url"])
        try:
            outcome = await drive(calls, callers, lambda p: sdk.pages.retrieve(page_id=p), page)
        finally:
            await sdk.aclose()
        client_429s = None
    elapsed = time.monotonic() - started
    stats = await admin.stats()
    return {
        "run": "limiter",
        "model": reset["rate_model"],
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
        "learned": (
            {k: status[k] for k in ("budget", "budget_source", "window_s")} if status else None
        ),
    }


async def bucket_runs(admin: SandboxAdmin, calls: int, callers: int) -> list[dict[str, Any]]:
    """reelqueue and the SDK alone against the token bucket."""
    reset = {"rate_model": "bucket", "rps": RATE, "burst": SANDBOX_BURST, "latency_ms": 0}
    ideal = (calls - CLIENT_BURST) / RATE
    ours = {"rate_limit": RATE, "burst": CLIENT_BURST}
    return [
        await measure("reelqueue", admin, reset, calls, callers, ideal, ours),
        await measure("official_sdk_alone", admin, reset, calls, callers, ideal),
    ]


async def window_runs(
    admin: SandboxAdmin, calls: int, callers: int, budget: int, window_s: float, latency_ms: float
) -> list[dict[str, Any]]:
    """reelqueue learning, reelqueue configured and the SDK alone against the window budget."""
    reset = {
        "rate_model": "window",
        "budget": budget,
        "window_s": window_s,
        "latency_ms": latency_ms,
    }
    ideal = (math.ceil(calls / budget) - 1) * window_s + latency_ms / 1000
    learning = {"rate_limit": LEARNING_RATE, "burst": LEARNING_BURST, "window_s": window_s}
    configured = {"budget": budget, "window_s": window_s}
    return [
        await measure("reelqueue_learning", admin, reset, calls, callers, ideal, learning),
        await measure("reelqueue_configured", admin, reset, calls, callers, ideal, configured),
        await measure("official_sdk_alone", admin, reset, calls, callers, ideal),
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("both", "bucket", "window"), default="both")
    parser.add_argument("--requests", type=int, default=150, help="bucket model requests")
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--window-requests", type=int, default=240)
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--latency-ms", type=float, default=300.0)
    args = parser.parse_args()
    configure_logging("error", "json")
    results: list[dict[str, Any]] = []
    with SandboxServer(SandboxConfig(rate_model="bucket")) as sandbox:
        admin = SandboxAdmin(sandbox.base_url)
        try:
            if args.model in ("both", "bucket"):
                for result in await bucket_runs(admin, args.requests, args.callers):
                    print(json.dumps(result), flush=True)
                    results.append(result)
            if args.model in ("both", "window"):
                runs = await window_runs(
                    admin,
                    args.window_requests,
                    args.callers,
                    args.budget,
                    args.window,
                    args.latency_ms,
                )
                for result in runs:
                    print(json.dumps(result), flush=True)
                    results.append(result)
        finally:
            await admin.aclose()
    print(json.dumps({"run": "summary", **summary(results)}), flush=True)


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per model and client: 429s the sandbox sent and elapsed over ideal."""
    return {
        f"{r['model']}/{r['client']}": {
            "429s": r["rate_limited_sent_by_sandbox"],
            "elapsed_over_ideal": r["elapsed_over_ideal"],
            "failed": r["failed"],
        }
        for r in results
    }


if __name__ == "__main__":
    asyncio.run(main())
