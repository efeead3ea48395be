"""Benchmark: a workspace limit with a 90-s Retry-After mid-run: nothing sent, webhooks fast.

`reelqueue run` runs as its own process (as deployed, 8 steps at once, every gate
auto-approved, short demo steps) against the sandbox with Notion-like latency (150-450
ms, median 300 ms), once per rate model (3 requests/s bucket, then 180 requests per 60-s
window). The creator queues 60 videos; once push-back is writing, the sandbox's workspace
limit is forced for 90 s (every /v1 request answered 429 `workspace_rate_limit` with the
seconds left as Retry-After). During the hold the creator edits 10 pages (the sandbox's
webhooks reach the service) and this process sends signed `page.properties_updated`
events to the service's /webhooks/notion over bare sockets, 5 a second one at a time and
three bursts of 50 at once, timing each answer.

From a log of every /v1 request that reached the sandbox (an ASGI middleware this
benchmark wraps around the sandbox app; the arrival time is before the sandbox's
latency, so it is when the request was sent on loopback), it reports the requests that
arrived after the first 429 reached the service and before the hold ended (target 0),
those already on their way when the hold began (unavoidable), and how soon after the
end the first request came; and the webhook answer times during the hold (target p99
under 100 ms).

    .venv/bin/python -m bench.workspace_limit [--hold-s 90] [--videos 60] [--models bucket,window]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import math
import os
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.databases import fresh_database
from bench.notion_like import (
    LATENCY_MS,
    Request,
    between,
    code_version,
    counts,
    percentiles,
    quiet_logs,
    sandbox,
    until,
)
from bench.webhook_burst import start_service
from reelqueue.db import start_embedded_server
from reelqueue.logs import configure_logging
from reelqueue.sandbox import SandboxAdmin

CHANNELS = (
    "channels:\n"
    "  - id: science\n    name: Science\n    max_concurrent: 5\n"
    "    auto_approve: [assets, video, audio, final]\n"
    "  - id: history\n    name: History\n    max_concurrent: 5\n"
    "    auto_approve: [assets, video, audio, final]\n"
)
QUEUED = {"Status": {"status": {"name": "Queued"}}}
STREAM_PER_S = 5.0
BURST = 50
BASELINE_S = 10.0
WORKSPACE_ID = str(uuid.uuid4())


def event_body(page_id: str, subscription_id: str) -> bytes:
    """An event of the sandbox's subscription (Notion sends one subscription id throughout)."""
    event = {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-12-03T12:00:00.000Z",
        "workspace_id": WORKSPACE_ID,
        "subscription_id": subscription_id,
        "integration_id": str(uuid.uuid4()),
        "type": "page.properties_updated",
        "authors": [{"id": str(uuid.uuid4()), "type": "person"}],
        "attempt_number": 1,
        "entity": {"id": page_id, "type": "page"},
        "data": {"parent": {"id": str(uuid.uuid4()), "type": "database"}, "updated_properties": []},
    }
    return json.dumps(event).encode()


def prepared(host: str, key: tuple[str, str], page_id: str) -> bytes:
    """A complete signed HTTP/1.1 request, built before the clock starts.

    `key` is the subscription's (id, verification token).
    """
    subscription_id, token = key
    raw = event_body(page_id, subscription_id)
    signature = "sha256=" + hmac.new(token.encode(), raw, hashlib.sha256).hexdigest()
    head = (
        f"POST /webhooks/notion HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
        f"X-Notion-Signature: {signature}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + raw


async def send(host: str, request: bytes) -> tuple[float, int]:
    """One event on a new connection, as Notion sends: (milliseconds to the answer, status)."""
    address, port = host.split(":")
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(address, int(port))
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    elapsed = (time.perf_counter() - started) * 1000
    writer.close()
    found = re.match(rb"HTTP/1\.1 (\d{3})", answer)
    return elapsed, int(found.group(1)) if found else 0


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_model(
    server: str, model: str, videos: int, hold_s: float, busy_after: int, tmp: Path
) -> dict[str, Any]:
    box, log = sandbox(model, videos=videos + 10, webhook_window_ms=60_000)
    channels = tmp / "channels.yaml"
    channels.write_text(CHANNELS)
    database_url = await fresh_database(server)
    with box:
        admin = SandboxAdmin(box.base_url)
        info = await admin.info()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTION_", "REELQUEUE_"))}
        env.update(
            DATABASE_URL=database_url,
            NOTION_TOKEN=box.token,
            NOTION_API_URL=box.base_url,
            NOTION_DATABASE_IDS=info["database_ids"][0],
            REELQUEUE_CHANNELS=str(channels),
            REELQUEUE_DEMO_STEP_SECONDS="0.05",
            REELQUEUE_DATA_DIR=str(tmp / "data"),
            REELQUEUE_ARTIFACTS=str(tmp / f"artifacts-{model}"),
            REELQUEUE_LOG_LEVEL="error",
        )
        process, url = await asyncio.to_thread(start_service, env, "--workers", "8")
        stream: list[tuple[float, int]] = []
        bursts: list[tuple[float, int]] = []
        try:
            host = url.removeprefix("http://")
            subscription = await admin.subscribe(f"{url}/webhooks/notion", verified=True)
            token = (str(subscription["id"]), str(subscription["verification_token"]))
            pages = [p["id"] for p in await admin.pages()]
            queued, edited = pages[:videos], pages[videos:]

            async def ready() -> bool:  # the leader's first reconcile and poll are done
                return sum(1 for e in log if "/query" in e.path) >= 2

            await until(ready, 60)
            await asyncio.sleep(2.0)
            # Before the hold, with nothing queued: the same events, for comparison.
            for page in queued[:20]:
                await send(host, prepared(host, token, page))
            baseline_stream: list[tuple[float, int]] = []
            for n in range(int(BASELINE_S * STREAM_PER_S)):
                request = prepared(host, token, queued[n % len(queued)])
                baseline_stream.append(await send(host, request))
                await asyncio.sleep(1 / STREAM_PER_S)
            requests = [prepared(host, token, queued[i % len(queued)]) for i in range(BURST)]
            baseline_burst = list(await asyncio.gather(*(send(host, r) for r in requests)))
            await asyncio.sleep(1.0)
            started = time.monotonic()
            await admin.edit(queued, QUEUED)

            async def busy() -> bool:
                since = between(log, started, math.inf)
                return sum(1 for e in since if e.kind == "push") >= busy_after

            await until(busy, 120)
            hold_sent = time.monotonic()
            granted = await admin.hold_workspace(hold_s)
            hold_set = time.monotonic()
            cpu_before = cpu_seconds(process.pid), time.process_time()
            ends_lo, ends_hi = hold_sent + granted, hold_set + granted

            async def stream_events() -> None:
                n = 0
                while time.monotonic() < ends_lo - 1.0:
                    request = prepared(host, token, queued[n % len(queued)])
                    stream.append(await send(host, request))
                    n += 1
                    await asyncio.sleep(max(0.0, hold_set + n / STREAM_PER_S - time.monotonic()))

            async def burst_events(at_s: float) -> None:
                await asyncio.sleep(max(0.0, hold_set + at_s - time.monotonic()))
                requests = [prepared(host, token, queued[i % len(queued)]) for i in range(BURST)]
                bursts.extend(await asyncio.gather(*(send(host, r) for r in requests)))

            async def creator_edits() -> None:
                await asyncio.sleep(10.0)
                for page in edited:
                    await admin.edit([page], {"Priority": {"select": {"name": "High"}}})
                    await asyncio.sleep(2.0)

            at = [granted * f for f in (0.2, 0.5, 0.8)]
            await asyncio.gather(stream_events(), creator_edits(), *(burst_events(a) for a in at))
            cpu_hold = (
                cpu_seconds(process.pid) - cpu_before[0],
                time.process_time() - cpu_before[1],
                time.monotonic() - hold_set,
            )
            # Past the end: the service resumes on its own.
            await asyncio.sleep(max(0.0, ends_hi + 8.0 - time.monotonic()))
            finished = time.monotonic()
            sandbox_stats = await admin.stats()
        finally:
            process.terminate()
            await asyncio.to_thread(process.wait, 30)
            await admin.aclose()

    return report(
        model, log, started, hold_sent, hold_set, ends_lo, ends_hi, finished, stream, bursts
    ) | {
        "webhooks_before_queueing": {
            "stream": percentiles([ms for ms, _ in baseline_stream]),
            "burst": percentiles([ms for ms, _ in baseline_burst]),
        },
        "cpu_share_during_hold": {
            "service_process": round(cpu_hold[0] / cpu_hold[2], 3),
            "bench_process_with_sandbox": round(cpu_hold[1] / cpu_hold[2], 3),
        },
        "rate_limited_sent_by_sandbox": sandbox_stats["rate_limited"],
    }


def report(
    model: str,
    log: list[Request],
    started: float,
    hold_sent: float,
    hold_set: float,
    ends_lo: float,
    ends_hi: float,
    finished: float,
    stream: list[tuple[float, int]],
    bursts: list[tuple[float, int]],
) -> dict[str, Any]:
    run = between(log, started, finished)
    # Answered 429 after the hold was asked for (the latency runs before the limit check).
    refused = [e for e in run if e.status == 429 and e.answered >= hold_sent]
    first_refusal = min((e.answered for e in refused), default=math.inf)
    in_flight = between(run, hold_sent - LATENCY_MS[1] / 1000, first_refusal)
    sent_in_flight = [e for e in in_flight if e.status == 429]
    after_known = between(run, first_refusal, ends_lo)
    resumed = [e for e in run if e.arrived >= ends_lo]
    first_after = min((e.arrived for e in resumed), default=None)
    answers = [ms for ms, _ in stream + bursts]
    return {
        "run": "workspace_limit",
        "rate_model": model,
        "latency_ms": list(LATENCY_MS),
        "hold_s": round(ends_lo - hold_sent, 1),
        "hold_from_edit_s": round(hold_sent - started, 2),
        "rate_limited_answers": len(refused),
        "first_429_after_hold_s": round(first_refusal - hold_sent, 3) if refused else None,
        "refused_already_on_their_way": len(sent_in_flight),
        "sent_after_first_429_before_end": len(after_known),
        "sent_after_first_429_before_end_detail": counts(after_known),
        "first_request_after_end_s": None
        if first_after is None
        else round(first_after - ends_hi, 3),
        "requests_after_end": counts(resumed),
        "webhooks": {
            "stream": percentiles([ms for ms, _ in stream]),
            "bursts": percentiles([ms for ms, _ in bursts]),
            "all": percentiles(answers),
            "not_200": sum(1 for _, status in stream + bursts if status != 200),
        },
        "requests": counts(run),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold-s", type=float, default=90.0)
    parser.add_argument("--videos", type=int, default=60)
    parser.add_argument("--models", default="bucket,window")
    parser.add_argument("--busy-after", type=int, default=10, help="page writes before the hold")
    args = parser.parse_args()
    configure_logging("error", "json")
    quiet_logs()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="reelqueue-bench-") as tmp:
        server = start_embedded_server(Path(tmp) / "pg")
        for model in args.models.split(","):
            result = await one_model(
                server, model, args.videos, args.hold_s, args.busy_after, Path(tmp)
            )
            print(json.dumps(result), flush=True)
            results.append(result)
    summary = {
        "run": "summary",
        "code": code_version(),
        "targets": {
            r["rate_model"]: {
                "nothing_sent_after_first_429_before_end": r["sent_after_first_429_before_end"]
                == 0,
                "webhook_p99_under_100ms": (r["webhooks"]["all"]["p99"] or 1e9) < 100,
                "all_webhooks_200": r["webhooks"]["not_200"] == 0,
            }
            for r in results
        },
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
