"""Benchmark: the claim under one exclusive lock against the shared/exclusive scheme.

The same claim workload runs on two databases of one embedded PostgreSQL, one with each
way of taking the fleet-wide claim lock, in interleaved rounds (exclusive, shared,
exclusive, ...), so a drift of this shared machine hits both alike:

- `exclusive`: every claim takes the claim lock alone and holds it to its commit (the
  database's `reelqueue_claim_lock` is replaced by one that does only that);
- `shared`: each claiming connection tags `application_name` with its worker's slots,
  the claim sums the fleet's slots from `pg_stat_activity`, and takes the lock shared
  while every cap has room for what runs plus the whole fleet's slots (else alone); a
  shared claim that finds the caps tight claims nothing, and the worker claims again
  alone (what `reelqueue.pipeline.Worker` does).

Workload: `--jobs` queued tasks over two channels whose caps (1,000 each) leave room for
the fleet, so the shared scheme shares; `--workers` processes (spawned), each one
connection and `--slots` slots, turning in a loop as a worker does with no-op steps:
one `exchange` records the tasks it holds as done (to the assets gate, with history,
outbox rows and NOTIFY) and claims as many again. Jobs per second run on the server's
clock from the moment the workers may start to the last completion's commit.

Prints one JSON object per round (with the 1-minute load average, which counts the
benchmark's own processes), then a summary: each variant's median and spread (max - min
over min, in per cent), and shared / exclusive, of the medians and round by round.

    .venv/bin/python -m bench.claim_lock [--jobs 5000] [--workers 5] [--slots 10] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import asyncpg

from reelqueue.db import create_engine, ensure_database, start_embedded_server, upgrade
from reelqueue.logs import configure_logging
from reelqueue.queue import ClaimLimits, Finish, NewTask, TaskRecord, exchange, insert_tasks
from reelqueue.statuses import StatusTable

SPAWN = multiprocessing.get_context("spawn")
CHANNELS = ("science", "history")
DONE = "assets_ready"
VARIANTS = ("exclusive", "shared")
# The exclusive variant's lock: alone, no tag, no fleet read (a fleet of 0 never finds
# a cap with room to share). It replaces the installed one in that variant's database.
EXCLUSIVE_LOCK = """
CREATE OR REPLACE FUNCTION reelqueue_claim_lock(
    p_lock_key bigint, p_worker text, p_slots int, p_shared boolean
) RETURNS int
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock_key);
    RETURN 0;
END;
$$
"""
LIMITS = ClaimLimits(channel_caps=dict.fromkeys(CHANNELS, 1000), step_caps={})
LEASE = timedelta(seconds=60)


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


async def fill(url: str, n: int, chunk: int = 2_000) -> None:
    """An empty queue, then n queued tasks over both channels, analysed as autovacuum would."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("TRUNCATE tasks, task_events, outbox RESTART IDENTITY")
    finally:
        await conn.close()
    tasks = [
        NewTask(
            notion_page_id=str(uuid.uuid4()),
            data_source_id="bench",
            channel=CHANNELS[i % len(CHANNELS)],
            title=f"bench {i}",
            topic="",
            story_direction="",
            priority=1,
            status="queued",
            notion_seen={},
        )
        for i in range(n)
    ]
    engine = create_engine(url)
    try:
        async with engine.begin() as conn_:
            for start in range(0, n, chunk):
                await insert_tasks(
                    conn_, tasks[start : start + chunk], actor="bench", table=StatusTable()
                )
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ANALYZE tasks; ANALYZE task_events; ANALYZE outbox")
    finally:
        await conn.close()


def claimer(url: str, name: str, slots: int, variant: str, ready: Queue[str], go: Event) -> None:
    asyncio.run(_claim_until_empty(url, name, slots, variant, ready, go))


async def _claim_until_empty(
    url: str, name: str, slots: int, variant: str, ready: Queue[str], go: Event
) -> None:
    """Turn as a worker with no-op steps does, until a turn finds nothing left to claim."""
    conn = await asyncpg.connect(url)
    held: list[TaskRecord] = []
    shared = variant == "shared"
    ready.put(name)
    await asyncio.to_thread(go.wait)
    while True:
        finished = [Finish(task, task.status, [(DONE, "assets done")], {}) for task in held]
        turn = await exchange(
            conn, worker_id=name, finished=finished, claim=slots, lease=LEASE,
            limits=LIMITS, slots=slots, shared=shared,
        )  # fmt: skip
        claimed = turn.claimed
        if variant == "shared":
            if shared and turn.tight:
                again = await exchange(
                    conn, worker_id=name, claim=slots, lease=LEASE, limits=LIMITS,
                    slots=slots, shared=False,
                )  # fmt: skip
                claimed, turn = again.claimed, again
            shared = not turn.tight
        held = [c.task for c in claimed]
        if not held:
            break
    await conn.close()


async def _server_clock(url: str) -> float:
    conn = await asyncpg.connect(url)
    try:
        return float(await conn.fetchval("SELECT extract(epoch FROM clock_timestamp())"))
    finally:
        await conn.close()


async def _completed(url: str) -> tuple[int, float]:
    conn = await asyncpg.connect(url)
    try:
        done, last = await conn.fetchrow(
            "SELECT count(*), extract(epoch FROM max(created_at))::float8 FROM task_events"
            " WHERE to_status = $1",
            DONE,
        )
        return int(done), float(last or 0.0)
    finally:
        await conn.close()


def one_round(variant: str, url: str, jobs: int, workers: int, slots: int) -> dict[str, Any]:
    """Fill the queue, let `workers` processes drain it, and time it on the server."""
    asyncio.run(fill(url, jobs))
    ready: Queue[str] = SPAWN.Queue()
    go = SPAWN.Event()
    processes = [
        SPAWN.Process(target=claimer, args=(url, f"bench-{i}", slots, variant, ready, go))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=60)
    started = asyncio.run(_server_clock(url))
    go.set()
    for process in processes:
        process.join(timeout=600)
    done, last = asyncio.run(_completed(url))
    elapsed = last - started
    return {
        "variant": variant,
        "jobs": jobs,
        "completed": done,
        "seconds": round(elapsed, 3),
        "jobs_per_s": round(done / elapsed, 1),
        "load_1m": round(os.getloadavg()[0], 2),
    }


async def prepare(data_dir: Path) -> tuple[dict[str, str], dict[str, Any]]:
    server = start_embedded_server(data_dir)
    suffix = uuid.uuid4().hex[:8]
    urls = {}
    for variant in VARIANTS:
        urls[variant] = await ensure_database(server, f"bench_{variant}_{suffix}")
        await upgrade(urls[variant])
    conn = await asyncpg.connect(urls["exclusive"])
    try:
        await conn.execute(EXCLUSIVE_LOCK)
    finally:
        await conn.close()
    conn = await asyncpg.connect(urls[VARIANTS[0]])
    try:
        info = {
            "postgres": await conn.fetchval("SHOW server_version"),
            "fsync": await conn.fetchval("SHOW fsync"),
            "synchronous_commit": await conn.fetchval("SHOW synchronous_commit"),
        }
    finally:
        await conn.close()
    return urls, info


def summary_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["jobs_per_s"] for r in runs]
    return {
        "median_jobs_per_s": statistics.median(rates),
        "rounds_jobs_per_s": rates,
        "spread_pct": round(100 * (max(rates) - min(rates)) / min(rates), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5_000, help="tasks per round")
    parser.add_argument("--workers", type=int, default=5, help="claiming processes")
    parser.add_argument("--slots", type=int, default=10, help="slots of each")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per variant, interleaved")
    args = parser.parse_args()
    configure_logging("warning")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reelqueue-bench-") as tmp:
        urls, info = asyncio.run(prepare(Path(tmp) / "data"))
        emit({"run": "setup", "cpus": multiprocessing.cpu_count()} | info | vars(args))
        runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
        for n in range(args.rounds):
            for variant in VARIANTS if n % 2 == 0 else VARIANTS[::-1]:
                figures = one_round(variant, urls[variant], args.jobs, args.workers, args.slots)
                runs[variant].append(figures)
                emit({"run": "round", "round": n + 1} | figures)
    results = {variant: summary_of(r) for variant, r in runs.items()}
    emit(
        {
            "run": "summary",
            **results,
            "shared_over_exclusive": round(
                results["shared"]["median_jobs_per_s"] / results["exclusive"]["median_jobs_per_s"],
                3,
            ),
            "shared_over_exclusive_by_round": [
                round(s["jobs_per_s"] / e["jobs_per_s"], 3)
                for s, e in zip(runs["shared"], runs["exclusive"], strict=True)
            ],
            "bench_seconds": round(time.perf_counter() - started, 1),
        }
    )


if __name__ == "__main__":
    main()
