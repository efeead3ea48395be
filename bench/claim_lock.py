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
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.databases import (
    CHANNELS,
    COMPLETED,
    DONE,
    completions,
    execute,
    fill_queue,
    queue_database,
    server_info,
)
from bench.processes import Cues, Fleet
from reelqueue.db import start_embedded_server
from reelqueue.logs import configure_logging
from reelqueue.queue import ClaimLimits, Finish, TaskRecord, exchange

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


def claimer(url: str, name: str, slots: int, variant: str, cues: Cues) -> None:
    asyncio.run(_claim_until_empty(url, name, slots, variant, cues))


async def _claim_until_empty(url: str, name: str, slots: int, variant: str, cues: Cues) -> None:
    """Turn as a worker with no-op steps does, until a turn finds nothing left to claim."""
    conn = await asyncpg.connect(url)
    held: list[TaskRecord] = []
    shared = variant == "shared"
    await cues.set_off(name)
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


def one_round(variant: str, url: str, jobs: int, workers: int, slots: int) -> dict[str, Any]:
    """Fill the queue, let `workers` processes drain it, and time it on the server."""
    # Notion was never seen to show these pages, so each new task also gets an outbox row.
    asyncio.run(fill_queue(url, jobs, seen={}))
    claimers = [(url, f"bench-{i}", slots, variant) for i in range(workers)]
    # Claimers end on their own once a turn finds the queue empty: leaving waits for them.
    with Fleet(claimer, claimers, join_s=600) as fleet:
        started = fleet.release(url)
    done, last = asyncio.run(completions(url, COMPLETED))
    elapsed = last - started
    return {
        "variant": variant,
        "jobs": jobs,
        "completed": done,
        "seconds": round(elapsed, 3),
        "jobs_per_s": round(done / elapsed, 1),
        "load_1m": round(os.getloadavg()[0], 2),
    }


async def prepare(server: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A migrated database per variant, the exclusive lock in its own, and the server's info."""
    urls = {variant: await queue_database(server) for variant in VARIANTS}
    await execute(urls["exclusive"], EXCLUSIVE_LOCK)
    return urls, await server_info(urls[VARIANTS[0]])


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
        urls, info = asyncio.run(prepare(start_embedded_server(Path(tmp) / "data")))
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
