"""Benchmark: push-back working through a backlog at Notion's latency, beside ingest.

A calendar of N Queued pages whose tasks all move at once (N outbox rows), against the
sandbox at 3 requests/second (bucket, burst 6) with 300 ms latency; a few seconds in,
the creator queues 20 more pages. Reports the write rate, the share of requests spent
on the reads before writes, the read-to-write window (from each PATCH's send back to the
send of the newest query answered before it), and how long the new batch took to land.

    .venv/bin/python -m bench.push_backlog [--backlog 300] [--latency-ms 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from bench.board import BOARD
from bench.databases import count, fresh_database
from reelqueue.config import DEFAULT_CHANNELS, Settings
from reelqueue.db import create_engine, start_embedded_server
from reelqueue.logs import configure_logging
from reelqueue.queue import TaskChange, apply_changes, load_tasks_by_page
from reelqueue.sandbox import SandboxAdmin, SandboxConfig, SandboxServer
from reelqueue.service import Service, ServiceOptions
from reelqueue.statuses import StatusTable

RATE = 3.0
NEW_BATCH = 20


@dataclass
class Recorder(httpx.AsyncBaseTransport):
    """Times every attempt as it is sent and answered."""

    inner: httpx.AsyncBaseTransport = field(default_factory=httpx.AsyncHTTPTransport)
    log: list[tuple[str, str, float, float]] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = time.monotonic()
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.log.append((request.method, request.url.path, sent, time.monotonic()))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def windows(log: list[tuple[str, str, float, float]]) -> list[float]:
    reads = [(sent, answered) for method, path, sent, answered in log if path.endswith("/query")]
    found: list[float] = []
    for method, _, sent, _ in log:
        if method != "PATCH":
            continue
        before = [r_sent for r_sent, answered in reads if answered <= sent]
        found.append(sent - max(before) if before else float("inf"))
    return sorted(found)


async def run(server: str, backlog: int, latency_ms: float) -> dict[str, Any]:
    config = SandboxConfig(
        status_options=BOARD,
        videos=0,
        rate_model="bucket",
        rps=RATE,
        burst=6,
        latency_ms=(latency_ms, latency_ms),
        webhook_window_ms=60_000,
    )
    with SandboxServer(config) as sandbox:
        admin = SandboxAdmin(sandbox.base_url)
        info = await admin.reset(videos=backlog + NEW_BATCH, queued=backlog, age_s=600)
        pages = [p["id"] for p in await admin.pages()]
        url = await fresh_database(server)
        recorder = Recorder()
        settings = Settings(
            notion_token=SecretStr(sandbox.token),
            notion_api_url=sandbox.base_url,
            notion_database_ids=list(info["database_ids"]),
            notion_rate_limit=RATE,
            poll_interval_s=15.0,
        )
        service = Service(
            settings,
            DEFAULT_CHANNELS,
            database_url=url,
            options=ServiceOptions(port=0),
            transport=recorder,
        )
        await service.start()
        engine = create_engine(url)
        try:
            await asyncio.wait_for(service.leading.wait(), 30)
            assert service.coordinator is not None
            await asyncio.wait_for(service.coordinator.ready.wait(), 120)
            await admin.subscribe(f"{service.base_url}/webhooks/notion", verified=True)
            async with engine.begin() as conn:
                tasks = await load_tasks_by_page(conn, pages[:backlog], lock=True)
                await apply_changes(
                    conn,
                    [
                        TaskChange(t.id, p, t.status, "claimed", actor="bench")
                        for p, t in tasks.items()
                    ],
                    StatusTable(),
                )
            started = time.monotonic()
            log_from = len(recorder.log)
            await asyncio.sleep(5.0)
            edited = time.monotonic()
            await admin.edit(pages[backlog:], {"Status": {"status": {"name": "Queued"}}})
            landed: float | None = None
            while True:
                if (
                    landed is None
                    and await count(url, "SELECT count(*) FROM tasks") >= backlog + NEW_BATCH
                ):
                    landed = time.monotonic() - edited
                if not await count(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
                    break
                await asyncio.sleep(0.1)
            took = time.monotonic() - started
            spent = recorder.log[log_from:]
            patches = sum(1 for method, *_ in spent if method == "PATCH")
            queries = sum(1 for _, path, *_ in spent if path.endswith("/query"))
            found = windows(spent)
            return {
                "run": "push_backlog",
                "backlog_pages": backlog,
                "latency_ms": latency_ms,
                "seconds_to_drain": round(took, 2),
                "writes_per_s": round(patches / took, 2),
                "requests_per_s": round(len(spent) / took, 2),
                "patches": patches,
                "queries": queries,
                "read_share": round(queries / max(len(spent), 1), 3),
                "read_to_write_max_s": round(found[-1], 3) if found else None,
                "read_to_write_p95_s": round(found[int(0.95 * (len(found) - 1))], 3)
                if found
                else None,
                "new_batch_seconds_to_queue": None if landed is None else round(landed, 3),
                "rate_limited_seen_by_client": service.notion.stats["rate_limited"]
                if service.notion
                else None,
            }
        finally:
            await engine.dispose()
            await service.stop()
            await admin.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=300.0)
    args = parser.parse_args()
    configure_logging("error", "json")
    with tempfile.TemporaryDirectory(prefix="reelqueue-bench-") as tmp:
        server = start_embedded_server(Path(tmp) / "data")
        print(json.dumps(await run(server, args.backlog, args.latency_ms)))


if __name__ == "__main__":
    asyncio.run(main())
