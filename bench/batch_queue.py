"""Benchmark: a creator's batch edit, from the edit to every video in the queue.

Runs, side by side on one machine: N = 20, 100, 1,000 Draft entries set to Queued in
one edit, with webhooks on and off, against the sandbox at 3 requests/second with no
webhook delay; then a quiet calendar of 5,000 pages with 1,000 tasks, counting Notion
requests per poll cycle. Prints one JSON object per run, then a summary object with
the targets and the on/off ratios.

    .venv/bin/python -m bench.batch_queue [--sizes 20,100,1000] [--steady-pages 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import SecretStr

from bench.board import BOARD
from bench.databases import count, fresh_database
from reelqueue.config import DEFAULT_CHANNELS, Settings
from reelqueue.db import start_embedded_server
from reelqueue.logs import configure_logging
from reelqueue.sandbox import SandboxAdmin, SandboxConfig, SandboxServer
from reelqueue.service import Service, ServiceOptions

RATE = 3.0
PUSH = "PATCH /v1/pages/{id}"


def requests(service: Service) -> dict[str, int]:
    assert service.notion is not None
    return {e: sum(c.values()) for e, c in service.notion.stats["requests"].items()}


def spent(service: Service, before: dict[str, int]) -> dict[str, int]:
    return {e: n - before.get(e, 0) for e, n in requests(service).items() if n - before.get(e, 0)}


async def until(check: Callable[[], Awaitable[bool]], within_s: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    return None


async def settle(service: Service, url: str, quiet_s: float = 1.5) -> None:
    """Wait until no Notion request has been made for `quiet_s` and the outbox is empty."""
    last = sum(requests(service).values())
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < quiet_s:
        await asyncio.sleep(0.1)
        now = sum(requests(service).values())
        pending = await count(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        if now != last or pending:
            last, quiet_since = now, time.monotonic()


async def start(server: str, sandbox: SandboxServer, poll_s: float) -> tuple[Service, str]:
    url = await fresh_database(server)
    admin = SandboxAdmin(sandbox.base_url)
    info = await admin.info()
    await admin.aclose()
    settings = Settings(
        notion_token=SecretStr(sandbox.token),
        notion_api_url=sandbox.base_url,
        notion_database_ids=list(info["database_ids"]),
        notion_rate_limit=RATE,
        poll_interval_s=poll_s,
    )
    service = Service(settings, DEFAULT_CHANNELS, database_url=url, options=ServiceOptions(port=0))
    await service.start()
    await asyncio.wait_for(service.leading.wait(), 30)
    assert service.coordinator is not None
    await asyncio.wait_for(service.coordinator.ready.wait(), 120)
    return service, url


async def batch(server: str, videos: int, webhooks: bool, poll_s: float) -> dict[str, Any]:
    """One batch edit of `videos` Drafts to Queued; seconds and requests until all queued."""
    config = SandboxConfig(
        status_options=BOARD,
        videos=videos,
        rate_model="bucket",
        rps=RATE,
        burst=6,
        webhook_window_ms=300,
    )
    with SandboxServer(config) as sandbox:
        service, url = await start(server, sandbox, poll_s)
        admin = SandboxAdmin(sandbox.base_url)
        try:
            if webhooks:
                await admin.subscribe(f"{service.base_url}/webhooks/notion", verified=True)
            pages = [p["id"] for p in await admin.pages()]
            await settle(service, url)
            before = requests(service)
            started = time.monotonic()
            await admin.edit(pages, {"Status": {"status": {"name": "Queued"}}})

            async def all_in() -> bool:
                return await count(url, "SELECT count(*) FROM tasks") >= videos

            waited = await until(all_in, within_s=poll_s + 120)
            seconds = None if waited is None else time.monotonic() - started
            await settle(service, url)
            used = spent(service, before)
            assert service.notion is not None
            return {
                "run": "batch",
                "videos": videos,
                "webhooks": webhooks,
                "poll_interval_s": poll_s,
                "seconds_to_all_queued": None if seconds is None else round(seconds, 3),
                "queued": await count(url, "SELECT count(*) FROM tasks WHERE status = 'queued'"),
                "duplicates": await count(
                    url,
                    "SELECT count(*) - count(DISTINCT task_id) FROM task_events"
                    " WHERE from_status IS NULL",
                ),
                "ingest_requests": sum(n for e, n in used.items() if e != PUSH),
                "push_requests": used.get(PUSH, 0),
                "ingest_request_target": math.ceil(videos / 100) + 2,
                "rate_limited_seen_by_client": service.notion.stats["rate_limited"],
                "rate_limited_sent_by_sandbox": (await admin.stats())["rate_limited"],
                "requests": used,
            }
        finally:
            await service.stop()
            await admin.aclose()


async def steady(server: str, pages: int, tasks: int, cycles: int) -> dict[str, Any]:
    """A quiet calendar: Notion requests per poll cycle once every task is in."""
    poll_s = 2.0
    config = SandboxConfig(status_options=BOARD, videos=0, rate_model="bucket", rps=RATE, burst=6)
    with SandboxServer(config) as sandbox:
        admin = SandboxAdmin(sandbox.base_url)
        await admin.reset(videos=pages, queued=tasks, age_s=3600)
        service, url = await start(server, sandbox, poll_s)
        try:
            loaded = await count(url, "SELECT count(*) FROM tasks")
            await settle(service, url)
            assert service.coordinator is not None
            passes = service.coordinator.passes
            before = requests(service)
            await asyncio.sleep(cycles * poll_s + poll_s / 2)
            done = service.coordinator.passes - passes
            used = spent(service, before)
            return {
                "run": "steady_state",
                "pages": pages,
                "tasks": loaded,
                "poll_interval_s": poll_s,
                "poll_cycles": done,
                "requests": used,
                "requests_per_cycle": round(sum(used.values()) / max(done, 1), 3),
                "data_sources": 1,
            }
        finally:
            await service.stop()
            await admin.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,100,1000")
    parser.add_argument("--poll-interval", type=float, default=15.0)
    parser.add_argument("--steady-pages", type=int, default=5000)
    parser.add_argument("--steady-tasks", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args()
    configure_logging("error", "json")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="reelqueue-bench-") as tmp:
        server = start_embedded_server(Path(tmp) / "data")
        results: list[dict[str, Any]] = []
        for size in (int(s) for s in args.sizes.split(",")):
            for webhooks in (True, False):
                result = await batch(server, size, webhooks, args.poll_interval)
                print(json.dumps(result), flush=True)
                results.append(result)
        quiet = await steady(server, args.steady_pages, args.steady_tasks, args.cycles)
        print(json.dumps(quiet), flush=True)

    def find(size: int, webhooks: bool) -> dict[str, Any]:
        return next(r for r in results if r["videos"] == size and r["webhooks"] == webhooks)

    sizes = sorted({r["videos"] for r in results})
    summary = {
        "run": "summary",
        "seconds_to_all_queued": {
            str(s): {
                "webhooks_on": find(s, True)["seconds_to_all_queued"],
                "webhooks_off": find(s, False)["seconds_to_all_queued"],
            }
            for s in sizes
        },
        "off_over_on_ratio": {
            str(s): round(
                (find(s, False)["seconds_to_all_queued"] or math.inf)
                / max(find(s, True)["seconds_to_all_queued"] or math.inf, 1e-9),
                2,
            )
            for s in sizes
        },
        "targets": {
            "20_within_2s_webhooks_on": (find(20, True)["seconds_to_all_queued"] or 99) <= 2
            if 20 in sizes
            else None,
            "1000_within_15s_webhooks_on": (find(1000, True)["seconds_to_all_queued"] or 99) <= 15
            if 1000 in sizes
            else None,
            "zero_429s": all(r["rate_limited_sent_by_sandbox"] == 0 for r in results),
            "ingest_requests_within_target": all(
                r["ingest_requests"] <= r["ingest_request_target"] for r in results
            ),
            "steady_one_request_per_cycle": quiet["requests_per_cycle"] <= 1.0,
            "no_duplicates": all(r["duplicates"] == 0 for r in results),
        },
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
