"""Benchmark: how fast `reelqueue run` answers Notion's webhooks, alone and in a burst of 200.

The service runs as its own process (as deployed) against the sandbox; this process
sends signed `page.properties_updated` events over loopback, first one at a time, then
200 at once, and reports the answer times (p50, p95, p99, max) of each and their ratio.

    .venv/bin/python -m bench.webhook_burst [--events 200]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.board import BOARD
from reelqueue.db import ensure_database, start_embedded_server
from reelqueue.sandbox import SandboxAdmin, SandboxConfig, SandboxServer

TOKEN = "secret_bench_webhook_token"
CHANNELS = "channels:\n  - id: science\n    name: Science\n  - id: history\n    name: History\n"


def body(page_id: str) -> bytes:
    event = {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-11-24T12:00:00.000Z",
        "workspace_id": str(uuid.uuid4()),
        "subscription_id": str(uuid.uuid4()),
        "integration_id": str(uuid.uuid4()),
        "type": "page.properties_updated",
        "authors": [{"id": str(uuid.uuid4()), "type": "person"}],
        "attempt_number": 1,
        "entity": {"id": page_id, "type": "page"},
        "data": {"parent": {"id": str(uuid.uuid4()), "type": "database"}, "updated_properties": []},
    }
    return json.dumps(event).encode()


def signature(raw: bytes) -> str:
    return "sha256=" + hmac.new(TOKEN.encode(), raw, hashlib.sha256).hexdigest()


def request_bytes(host: str, raw: bytes) -> bytes:
    """A complete HTTP/1.1 request, built before the clock starts."""
    head = (
        f"POST /webhooks/notion HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
        f"X-Notion-Signature: {signature(raw)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + raw


async def send(url: str, prepared: bytes) -> float:
    """Open a connection, send one prepared event, read the answer: milliseconds taken.

    A bare socket client keeps the sender's own cost out of the figure, as Notion
    sends from its own machines.
    """
    host, port = url.removeprefix("http://").split(":")
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(prepared)
    await writer.drain()
    answer = await reader.read()
    elapsed = time.perf_counter() - started
    writer.close()
    if not answer.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"webhook answered {answer[:200]!r}")
    return elapsed * 1000


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 2),
        "p95_ms": round(cuts[94], 2),
        "p99_ms": round(cuts[98], 2),
        "max_ms": round(ordered[-1], 2),
    }


def start_service(env: dict[str, str], *extra_args: str) -> tuple[subprocess.Popen[str], str]:
    """`reelqueue run` as its own process on a free port; its base URL once it serves."""
    process = subprocess.Popen(
        [sys.executable, "-m", "reelqueue", "run", "--port", "0", *extra_args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"serving on (http://\S+)", line)
        if found:
            return process, found.group(1)
    raise RuntimeError("reelqueue run did not start")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reelqueue-bench-") as tmp:
        server = start_embedded_server(Path(tmp) / "data")
        database_url = await ensure_database(server, f"bench_{uuid.uuid4().hex[:8]}")
        channels = Path(tmp) / "channels.yaml"
        channels.write_text(CHANNELS)
        config = SandboxConfig(
            status_options=BOARD, videos=20, rate_model="bucket", rps=1000, burst=1000
        )
        with SandboxServer(config) as sandbox:
            admin = SandboxAdmin(sandbox.base_url)
            info = await admin.info()
            page_ids = [p["id"] for p in await admin.pages()]
            await admin.aclose()
            env = {
                k: v for k, v in os.environ.items() if not k.startswith(("NOTION_", "REELQUEUE_"))
            }
            env.update(
                DATABASE_URL=database_url,
                NOTION_TOKEN=sandbox.token,
                NOTION_API_URL=sandbox.base_url,
                NOTION_DATABASE_IDS=info["database_ids"][0],
                NOTION_WEBHOOK_TOKEN=TOKEN,
                REELQUEUE_CHANNELS=str(channels),
                REELQUEUE_LOG_LEVEL="error",
            )
            process, url = await asyncio.to_thread(start_service, env)
            try:
                host = url.removeprefix("http://")

                def prepared(count: int) -> list[bytes]:
                    pages = (page_ids[i % len(page_ids)] for i in range(count))
                    return [request_bytes(host, body(page)) for page in pages]

                for warm in prepared(20):
                    await send(url, warm)
                one_at_a_time = [await send(url, r) for r in prepared(args.events)]
                await asyncio.sleep(1)
                burst = await asyncio.gather(*(send(url, r) for r in prepared(args.events)))
            finally:
                process.terminate()
                process.wait(timeout=30)
    sequential, concurrent = percentiles(one_at_a_time), percentiles(list(burst))
    result: dict[str, Any] = {
        "run": "webhook_burst",
        "events": args.events,
        "one_at_a_time": sequential,
        "burst": concurrent,
        "burst_over_one_at_a_time_p99": round(concurrent["p99_ms"] / sequential["p99_ms"], 2),
        "target_p99_ms": 100,
        "meets_target": concurrent["p99_ms"] < 100,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
