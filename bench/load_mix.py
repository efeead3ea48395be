"""Benchmark: 200 videos through the pipeline with push-back behind, then 20 more queued.

Against the sandbox with Notion-like latency (150-450 ms, median 300 ms) and Notion's
one-minute webhook window, once per rate model (the 3 requests/s bucket, then 180
requests per 60-s window), the service with its default limiter settings (3/s, burst 3,
no configured budget: it learns a window budget from a 429). The creator queues 200
Drafts in one edit; every gate is auto-approved and the demo steps are short, so the
pipeline finishes long before push-back; once push-back is busy the creator queues 20
more in one edit. Reports the seconds from that edit to all 20 in the queue, push-back's
PATCHes per second while it is busy (from a log of every request that reached the
sandbox), the seconds until all 200 pages show Published against the ideal, and 429s.

    .venv/bin/python -m bench.load_mix [--videos 200] [--more 20]
        [--models bucket,window,window+budget]

`--models window+budget` runs the window model with the budget configured in the client
(`NOTION_RATE_BUDGET=180`, `NOTION_RATE_WINDOW_S=60`) instead of left to be learned.

`--pusher-window-s` is an experiment, not a setting: it changes the default of push-back's
read-to-write window (`Pusher(window_s=...)`) in this process, to show what bounds the
page writes per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.notion_like import (
    BUDGET_PER_S,
    LATENCY_MS,
    Database,
    Request,
    between,
    client_settings,
    code_version,
    count_fresh_reads,
    counts,
    quiet_logs,
    sandbox,
    start_service,
    status_name,
    until,
)
from reelqueue.config import DEFAULT_CHANNELS
from reelqueue.db import start_embedded_server
from reelqueue.logs import configure_logging
from reelqueue.pushback import Pusher
from reelqueue.sandbox import SandboxAdmin

QUEUED = {"Status": {"status": {"name": "Queued"}}}
WINDOW_S = 60.0


def purposes(entries: Iterable[Request]) -> dict[str, int]:
    """Queries per purpose (see `query_purpose`)."""
    return dict(Counter(e.purpose for e in entries))


def rate_limited_per_window(entries: list[Request], started: float) -> list[int]:
    """429s in each 60-s span from `started` (the sandbox's own windows start at its first
    request after the last one closed; these spans are an approximation of them)."""
    refused = [e.answered for e in entries if e.status == 429 and e.answered >= started]
    if not refused:
        return []
    spans = math.ceil((max(refused) - started + 1e-9) / WINDOW_S)
    per = [0] * max(spans, 1)
    for at in refused:
        per[min(int((at - started) // WINDOW_S), len(per) - 1)] += 1
    return per


async def one_model(
    server: str, model: str, videos: int, more: int, busy_after: int, timeout_s: float, tmp: Path
) -> dict[str, Any]:
    box, log = sandbox(model, videos=videos + more, webhook_window_ms=60_000)
    with box:
        service, url = await start_service(
            server, box, DEFAULT_CHANNELS, tmp, step_s=0.05, **client_settings(model)
        )
        db = await Database.connect(url)
        admin = SandboxAdmin(box.base_url)
        samples: list[tuple[float, int]] = []
        sampling = True

        async def sample_outbox() -> None:
            while sampling:
                pending = await db.value(
                    "SELECT count(DISTINCT notion_page_id) FROM outbox WHERE sent_at IS NULL"
                )
                samples.append((time.monotonic(), pending))
                await asyncio.sleep(0.25)

        try:
            await admin.info()
            await admin.subscribe(f"{service.base_url}/webhooks/notion", verified=True)
            fresh_reads = count_fresh_reads(service)
            pages = [p["id"] for p in await admin.pages()]
            first, second = pages[:videos], pages[videos : videos + more]
            await asyncio.sleep(2.0)
            sampler = asyncio.create_task(sample_outbox())
            started = time.monotonic()
            await admin.edit(first, QUEUED)

            async def first_in() -> bool:
                return await db.value(
                    "SELECT count(*) FROM tasks WHERE notion_page_id = ANY($1::text[])", first
                ) >= len(first)

            await until(first_in, 60)
            first_queued_s = time.monotonic() - started

            async def busy() -> bool:
                return sum(1 for e in between(log, started, math.inf) if e.kind == "push") >= (
                    busy_after
                )

            await until(busy, 120)
            second_wall = datetime.now(UTC)
            second_started = time.monotonic()
            await admin.edit(second, QUEUED)

            async def second_in() -> bool:
                return await db.value(
                    "SELECT count(*) FROM tasks WHERE notion_page_id = ANY($1::text[])",
                    second,
                ) >= len(second)

            second_ok = await until(second_in, 60)
            second_queued_s = time.monotonic() - second_started if second_ok else None
            created = await db.pool.fetchrow(
                "SELECT min(created_at) AS first, max(created_at) AS last FROM tasks"
                " WHERE notion_page_id = ANY($1::text[])",
                second,
            )
            second_created = [
                None if created[k] is None else round((created[k] - second_wall).total_seconds(), 3)
                for k in ("first", "last")
            ]

            published_at: dict[str, float | None] = {"first": None, "second": None}
            deadline = started + timeout_s
            while time.monotonic() < deadline:
                shown = {p["id"]: status_name(p) for p in await admin.pages()}
                now = time.monotonic()
                for name, group in (("first", first), ("second", second)):
                    if published_at[name] is None and all(
                        shown.get(p) == "Published" for p in group
                    ):
                        published_at[name] = now
                if all(v is not None for v in published_at.values()):
                    break
                await asyncio.sleep(0.5)
            ended = time.monotonic()
            sampling = False
            await sampler
            shown = {p["id"]: status_name(p) for p in await admin.pages()}
            sandbox_stats = await admin.stats()
            assert service.notion is not None
            client_429s = service.notion.stats["rate_limited"]
            learned = service.notion.limiter.status().as_dict()
        finally:
            sampling = False
            await service.stop()
            await admin.aclose()
            await db.close()

    done_first = published_at["first"]
    done_all = published_at["second"] if done_first is not None else None
    if done_all is not None and done_first is not None:
        done_all = max(done_all, done_first)
    run = between(log, started, ended)
    accepted = [e for e in run if e.status != 429]
    pushes = [e for e in accepted if e.kind == "push"]
    # Busy: from the first page write after the edit to the last, the outbox never empty.
    busy_start = pushes[0].arrived if pushes else started
    busy_end = pushes[-1].arrived if pushes else started
    busy_span = max(busy_end - busy_start, 1e-9)
    in_busy = [s for s in samples if busy_start <= s[0] <= busy_end]
    busy_pushes = sum(1 for e in pushes if busy_start <= e.arrived <= busy_end) - 1
    busy_all = sum(1 for e in accepted if busy_start <= e.arrived <= busy_end) - 1
    to_first = [e for e in accepted if done_first is None or e.arrived <= done_first]
    minimum_first = len(first) + math.ceil(len(first) / 100)
    minimum_all = minimum_first + len(second) + math.ceil(len(second) / 100)
    seconds_first = None if done_first is None else round(done_first - started, 2)
    seconds_all = None if done_all is None else round(done_all - started, 2)

    def ratio(seconds: float | None, requests: int) -> float | None:
        return None if seconds is None else round(seconds / (requests / BUDGET_PER_S), 3)

    # The first read of the creator's statuses after the second edit: what it waited for.
    first_read = next(
        (e for e in run if e.arrived >= second_started and e.purpose.startswith("recent")), None
    )
    refused = [e for e in run if e.status == 429]
    per_window = rate_limited_per_window(run, started)
    return {
        "run": "load_mix",
        "rate_model": model,
        "latency_ms": list(LATENCY_MS),
        "videos": len(first),
        "more": len(second),
        "seconds_first_batch_to_queue": round(first_queued_s, 3),
        "seconds_more_to_queue": None if second_queued_s is None else round(second_queued_s, 3),
        "more_edit_after_s": round(second_started - started, 2),
        "more_tasks_created_s": second_created,
        "more_first_read_sent_s": None
        if first_read is None
        else round(first_read.arrived - second_started, 3),
        "more_first_read_answered_s": None
        if first_read is None
        else round(first_read.answered - second_started, 3),
        "push_busy": {
            "from_s": round(busy_start - started, 2),
            "to_s": round(busy_end - started, 2),
            "patches": busy_pushes + 1,
            "patches_per_s": round(busy_pushes / busy_span, 3),
            "share_of_budget": round(busy_pushes / busy_span / BUDGET_PER_S, 3),
            "pushback_fresh_reads": sum(1 for at in fresh_reads if busy_start <= at <= busy_end),
            "queries": purposes(
                e for e in accepted if busy_start <= e.arrived <= busy_end and e.purpose
            ),
            "patches_per_fresh_read": round(
                (busy_pushes + 1)
                / max(1, sum(1 for at in fresh_reads if busy_start <= at <= busy_end)),
                2,
            ),
            "all_requests_per_s": round(busy_all / busy_span, 3),
            "all_share_of_budget": round(busy_all / busy_span / BUDGET_PER_S, 3),
            "outbox_nonempty_share": round(
                sum(1 for _, n in in_busy if n) / max(len(in_busy), 1), 3
            ),
        },
        "seconds_to_all_published": seconds_first,
        "seconds_to_all_published_incl_more": seconds_all,
        "requests_sent_until_published": len(to_first),
        "ideal_s_sent": round(len(to_first) / BUDGET_PER_S, 2),
        "over_ideal_sent": ratio(seconds_first, len(to_first)),
        "minimum_requests": minimum_first,
        "ideal_s_minimum": round(minimum_first / BUDGET_PER_S, 2),
        "over_ideal_minimum": ratio(seconds_first, minimum_first),
        "minimum_requests_incl_more": minimum_all,
        "over_ideal_minimum_incl_more": ratio(seconds_all, minimum_all),
        "published_on_pages": sum(1 for p in first if shown.get(p) == "Published"),
        "published_on_pages_more": sum(1 for p in second if shown.get(p) == "Published"),
        "rate_limited_sent_by_sandbox": sandbox_stats["rate_limited"],
        "rate_limited_at_s": [round(e.answered - started, 2) for e in refused],
        "rate_limited_per_60s": per_window,
        "rate_limited_seen_by_client": client_429s,
        "limiter": {k: learned[k] for k in ("budget", "budget_source", "rate", "burst")},
        "requests": counts(run),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--more", type=int, default=20)
    parser.add_argument("--models", default="bucket,window,window+budget")
    parser.add_argument("--busy-after", type=int, default=15, help="page writes before the edit")
    parser.add_argument("--timeout", type=float, default=200.0)
    parser.add_argument(
        "--pusher-window-s",
        type=float,
        default=None,
        help="experiment: push-back's read-to-write window instead of its default",
    )
    args = parser.parse_args()
    configure_logging("error", "json")
    quiet_logs()
    if args.pusher_window_s is not None:
        defaults = Pusher.__init__.__kwdefaults__
        assert defaults is not None
        defaults["window_s"] = args.pusher_window_s
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="reelqueue-bench-") as tmp:
        server = start_embedded_server(Path(tmp) / "pg")
        for model in args.models.split(","):
            result = await one_model(
                server, model, args.videos, args.more, args.busy_after, args.timeout, Path(tmp)
            )
            print(json.dumps(result), flush=True)
            results.append(result)
    summary = {
        "run": "summary",
        "code": code_version(),
        "targets": {
            r["rate_model"]: {
                "more_in_queue_within_2s": (r["seconds_more_to_queue"] or 99) <= 2,
                "push_patches_95pc_of_budget": r["push_busy"]["share_of_budget"] >= 0.95,
                "published_within_1_2x_minimum": (r["over_ideal_minimum"] or 99) <= 1.2,
                "published_within_1_2x_sent": (r["over_ideal_sent"] or 99) <= 1.2,
                "rate_limited": (
                    r["rate_limited_sent_by_sandbox"] == 0
                    if r["rate_model"] == "bucket"
                    else all(n <= 1 for n in r["rate_limited_per_60s"])
                ),
            }
            for r in results
        },
    }
    if args.pusher_window_s is not None:
        summary["pusher_window_s"] = args.pusher_window_s
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
