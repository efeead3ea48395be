"""Benchmark: reelqueue's queue against PgQueuer 1.6, side by side on one embedded server.

Measures, for each system on the same run and the same embedded PostgreSQL (two
databases, loopback only):

- enqueue of 10,000 tasks in one call (reelqueue: `insert_tasks`; PgQueuer:
  `Queries.enqueue` with lists), best and median of three, each in a fresh table;
- claim + complete throughput over a pre-filled queue with a no-op step: 1 worker
  taking 1 at a time, and 5 workers taking 10 at a time. Each worker is its own
  process (spawned, so the GIL caps neither system). reelqueue's is a real
  `reelqueue.pipeline.Worker` with that many slots and no-op steps, doing what it does
  in production (queued -> generating_assets -> assets_ready, a gate: one step per
  task, with history, outbox rows for Notion and NOTIFY); PgQueuer's is its own
  `PgQueuer.run(mode=drain)` with a no-op entrypoint (dequeue, then its batched log).
  The clock, the server's for both, runs from the moment the workers may start to the
  last completion's transaction. Each configuration runs `--rounds` times, the two
  systems taking turns, and the median round is reported (this machine is noisy);
- wake-up latency: one task at a time into an idle consumer process (a real
  `reelqueue.pipeline.Worker` polling every 2 s; a `PgQueuer` with its 30 s default),
  from commit acknowledged to the claim (the claim transaction's `now()`, from
  `task_events` / `pgqueuer_log`) and to the step or entrypoint being called.

Prints one JSON object per measurement, then a summary with reelqueue / PgQueuer
ratios and the targets: throughput at least PgQueuer's, wake-up p95 under 50 ms,
10,000 enqueued in under 0.5 s.

    .venv/bin/python -m bench.queue [--jobs 5000] [--samples 200] [--rounds 5]

(run it as a module from the repository root: as a script its name would hide the
standard library's `queue`)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import asyncpg
from pgqueuer import AsyncpgDriver, PgQueuer, Queries
from pgqueuer.domain import models, types
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.databases import (
    CHANNELS,
    COMPLETED,
    completions,
    count,
    empty_queue,
    execute,
    fill_queue,
    fresh_database,
    insert_in_chunks,
    new_tasks,
    queue_database,
    server_info,
)
from bench.processes import SPAWN, Cues, Fleet
from reelqueue.config import Channel, Channels, Settings
from reelqueue.db import create_engine, start_embedded_server
from reelqueue.logs import configure_logging
from reelqueue.pipeline import StepContext, StepFunction, StepResult, Worker
from reelqueue.queue import insert_tasks
from reelqueue.statuses import STEPS, StatusTable

BENCH_CHANNELS = Channels(
    channels=tuple(Channel(id=c, name=c, max_concurrent=1000) for c in CHANNELS)
)
# What Notion shows of a queued page: the task needs no push-back.
SEEN = {"status": "Queued", "priority": None, "error_log": "", "youtube_url": None}
ENTRYPOINT = "noop"
ENQUEUE_N = 10_000
ENQUEUE_REPEATS = 3
WARMUP = 5


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


async def reset_pgqueuer(url: str) -> None:
    await execute(url, "TRUNCATE pgqueuer, pgqueuer_log, pgqueuer_statistics RESTART IDENTITY")


async def fill_pgqueuer(url: str, n: int) -> None:
    await reset_pgqueuer(url)
    conn = await asyncpg.connect(url)
    try:
        await Queries(AsyncpgDriver(conn)).enqueue([ENTRYPOINT] * n, [None] * n, [0] * n)
    finally:
        await conn.close()
    await execute(url, "ANALYZE pgqueuer", "ANALYZE pgqueuer_log")


async def enqueue_reelqueue(url: str, chunk: int | None) -> dict[str, Any]:
    """10,000 tasks through `insert_tasks` in one transaction: one call, or calls of `chunk`."""
    engine = create_engine(url)
    seconds: list[float] = []
    error = None
    try:
        for _ in range(ENQUEUE_REPEATS):
            await empty_queue(url)
            tasks = new_tasks(ENQUEUE_N, SEEN)
            started = time.perf_counter()
            try:
                async with engine.begin() as conn:
                    await insert_in_chunks(conn, tasks, chunk or ENQUEUE_N)
            except Exception as exc:
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                break
            seconds.append(time.perf_counter() - started)
    finally:
        await engine.dispose()
    return {"calls": 1 if chunk is None else -(-ENQUEUE_N // chunk), "error": error} | spread(
        seconds
    )


async def enqueue_pgqueuer(url: str) -> dict[str, Any]:
    seconds: list[float] = []
    conn = await asyncpg.connect(url)
    try:
        queries = Queries(AsyncpgDriver(conn))
        for _ in range(ENQUEUE_REPEATS):
            await reset_pgqueuer(url)
            entrypoints = [ENTRYPOINT] * ENQUEUE_N
            payloads: list[bytes | None] = [None] * ENQUEUE_N
            priorities = [0] * ENQUEUE_N
            started = time.perf_counter()
            await queries.enqueue(entrypoints, payloads, priorities)
            seconds.append(time.perf_counter() - started)
    finally:
        await conn.close()
    return {"calls": 1, "error": None} | spread(seconds)


def spread(seconds: Sequence[float]) -> dict[str, Any]:
    if not seconds:
        return {"seconds": [], "best_s": None, "median_s": None}
    return {
        "seconds": [round(s, 4) for s in seconds],
        "best_s": round(min(seconds), 4),
        "median_s": round(statistics.median(seconds), 4),
    }


def reelqueue_drainer(url: str, name: str, batch: int, cues: Cues) -> None:
    asyncio.run(_reelqueue_drain(url, name, batch, cues))


async def _noop(_ctx: StepContext) -> StepResult:
    return StepResult()


async def _reelqueue_drain(url: str, name: str, batch: int, cues: Cues) -> None:
    """A real `Worker` with no-op steps and `batch` slots, until the parent says stop."""
    configure_logging("warning")
    engine = create_engine(url, pool_size=max(2, batch), pre_ping=False)
    async with engine.connect(), engine.connect():  # connected before the clock, as PgQueuer is
        pass
    with tempfile.TemporaryDirectory(prefix="bench-artifacts-") as artifacts:
        worker = Worker(
            url,
            Settings(demo_step_seconds=0, artifacts_dir=Path(artifacts)),
            BENCH_CHANNELS,
            {"demo": dict.fromkeys(STEPS, _noop)},
            concurrency=batch,
            worker_id=name,
            engine=engine,
        )
        await cues.set_off(name)
        stopping = asyncio.Event()
        running = asyncio.create_task(worker.run(stopping))
        await cues.stopped()
        stopping.set()
        await running
    await engine.dispose()


async def _pgqueuer(url: str, handle: Callable[[models.Job], Awaitable[None]]) -> PgQueuer:
    """A PgQueuer on a connection of its own, with `handle` as the entrypoint's function."""
    pgq = PgQueuer(AsyncpgDriver(await asyncpg.connect(url)))
    pgq.entrypoint(ENTRYPOINT)(handle)
    return pgq


def pgqueuer_drainer(url: str, name: str, batch: int, cues: Cues) -> None:
    asyncio.run(_pgqueuer_drain(url, name, batch, cues))


async def _pgqueuer_drain(url: str, name: str, batch: int, cues: Cues) -> None:
    """PgQueuer's own drain mode with a no-op entrypoint (dequeue, then its batched log)."""

    async def noop(job: models.Job) -> None:
        pass

    pgq = await _pgqueuer(url, noop)
    await cues.set_off(name)
    await pgq.run(batch_size=batch, mode=types.QueueExecutionMode.drain)
    await cues.stopped()


Drainer = Callable[[str, str, int, Cues], None]

# Completions so far and the last one's time, on the server's clock, for each system.
_COMPLETED = {
    "reelqueue": COMPLETED,
    "pgqueuer": "SELECT count(*), extract(epoch FROM max(created))::float8 FROM pgqueuer_log"
    " WHERE status = 'successful'",
}


def throughput(
    system: str, drainer: Drainer, url: str, jobs: int, workers: int, batch: int
) -> dict[str, Any]:
    """Run `workers` processes until every job is completed; jobs per second from the
    moment they may start to the last completion (both on the server's clock)."""
    with Fleet(drainer, [(url, f"bench-{i}", batch) for i in range(workers)]) as fleet:
        started = fleet.release(url)
        done, last = asyncio.run(completions(url, _COMPLETED[system], wait_for=jobs, within_s=300))
    elapsed = last - started
    return {
        "workers": workers,
        "batch": batch,
        "jobs": jobs,
        "completed": done,
        "seconds": round(elapsed, 3),
        "jobs_per_s": round(done / elapsed, 1),
    }


def median_round(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run by jobs per second, with every round's figure beside it."""
    ranked = sorted(runs, key=lambda r: r["jobs_per_s"])
    return ranked[len(ranked) // 2] | {"rounds_jobs_per_s": [r["jobs_per_s"] for r in runs]}


def noop_steps(stamps: Queue[tuple[int, float]]) -> dict[str, StepFunction]:
    async def step(ctx: StepContext) -> StepResult:
        stamps.put((ctx.task.id, time.time()))
        return StepResult()

    return dict.fromkeys(STEPS, step)


def reelqueue_consumer(
    url: str, artifacts: str, stamps: Queue[tuple[int, float]], cues: Cues
) -> None:
    asyncio.run(_reelqueue_consume(url, artifacts, stamps, cues))


async def _reelqueue_consume(
    url: str, artifacts: str, stamps: Queue[tuple[int, float]], cues: Cues
) -> None:
    configure_logging("warning")
    settings = Settings(demo_step_seconds=0, artifacts_dir=Path(artifacts))
    worker = Worker(url, settings, BENCH_CHANNELS, {"demo": noop_steps(stamps)}, poll_s=2.0)
    stopping = asyncio.Event()
    running = asyncio.create_task(worker.run(stopping))
    await worker.started.wait()
    cues.ready.put("reelqueue")
    await cues.stopped()
    stopping.set()
    await running


def pgqueuer_consumer(
    url: str, _artifacts: str, stamps: Queue[tuple[int, float]], cues: Cues
) -> None:
    asyncio.run(_pgqueuer_consume(url, stamps, cues))


async def _pgqueuer_consume(url: str, stamps: Queue[tuple[int, float]], cues: Cues) -> None:
    async def stamp(job: models.Job) -> None:
        stamps.put((int(job.id), time.time()))

    pgq = await _pgqueuer(url, stamp)
    running = asyncio.create_task(pgq.run())
    cues.ready.put("pgqueuer")
    await cues.stopped()
    pgq.shutdown.set()
    await running


Consumer = Callable[[str, str, "Queue[tuple[int, float]]", Cues], None]


async def _commit_reelqueue(engine: AsyncEngine) -> tuple[int, float]:
    async with engine.connect() as conn:
        created = await insert_tasks(conn, new_tasks(1, SEEN), actor="bench", table=StatusTable())
        await conn.commit()
        return created[0].id, time.time()


async def _commit_pgqueuer(queries: Queries) -> tuple[int, float]:
    (job_id,) = await queries.enqueue(ENTRYPOINT, None)
    return int(job_id), time.time()


_CLAIMS = {
    "reelqueue": "SELECT task_id AS id, extract(epoch FROM created_at)::float8 AS at"
    " FROM task_events WHERE reason = 'claimed for assets'",
    "pgqueuer": "SELECT job_id AS id, extract(epoch FROM created)::float8 AS at"
    " FROM pgqueuer_log WHERE status = 'picked'",
}


async def _wake_samples(
    system: str, url: str, samples: int, stamps: Queue[tuple[int, float]], gap_s: float
) -> list[tuple[float, float]]:
    engine = create_engine(url)
    conn = await asyncpg.connect(url)
    queries = Queries(AsyncpgDriver(conn))
    commits: dict[int, tuple[float, float]] = {}
    try:
        for i in range(WARMUP + samples):
            if system == "reelqueue":
                task_id, committed = await _commit_reelqueue(engine)
            else:
                task_id, committed = await _commit_pgqueuer(queries)
            stamped_id, handled = await asyncio.to_thread(stamps.get, True, 10)
            assert stamped_id == task_id, (stamped_id, task_id)
            if i >= WARMUP:
                commits[task_id] = (committed, handled)
            await asyncio.sleep(random.uniform(gap_s, 2 * gap_s))
        claims = {row["id"]: row["at"] for row in await conn.fetch(_CLAIMS[system])}
    finally:
        await conn.close()
        await engine.dispose()
    return [(claims[i] - c, h - c) for i, (c, h) in commits.items()]


def wake_latency(
    consumer: Consumer, system: str, url: str, samples: int, gap_s: float = 0.04
) -> dict[str, Any]:
    """One task at a time, each `gap_s` to 2 x `gap_s` after the last one reached its handler
    (by default long enough for the consumer to have finished it and gone idle)."""
    stamps: Queue[tuple[int, float]] = SPAWN.Queue()
    with (
        tempfile.TemporaryDirectory(prefix="bench-artifacts-") as artifacts,
        Fleet(consumer, [(url, artifacts, stamps)]) as fleet,
    ):
        fleet.wait_ready()
        time.sleep(0.5)  # the LISTEN connection is opened in the background
        pairs = asyncio.run(_wake_samples(system, url, samples, stamps, gap_s))
    claim_ms = sorted(1000 * c for c, _ in pairs)
    handler_ms = sorted(1000 * h for _, h in pairs)
    return {
        "samples": len(pairs),
        "gap_ms": [round(1000 * gap_s), round(2000 * gap_s)],
        "to_claim_ms": percentiles(claim_ms),
        "to_handler_ms": percentiles(handler_ms),
        "over_1s": sum(1 for ms in handler_ms if ms > 1000),
    }


def percentiles(values: Sequence[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 2),
        "p95": round(cuts[94], 2),
        "max": round(max(values), 2),
        "min": round(min(values), 2),
    }


async def prepare(server: str) -> tuple[str, str, dict[str, Any]]:
    """reelqueue's database, PgQueuer's (its schema installed), and the server's info."""
    rq_url = await queue_database(server)
    pq_url = await fresh_database(server)
    conn = await asyncpg.connect(pq_url)
    try:
        await Queries(AsyncpgDriver(conn)).install()
    finally:
        await conn.close()
    unlogged = await count(
        pq_url,
        "SELECT count(*) FROM pg_class WHERE relname LIKE 'pgqueuer%'"
        " AND relkind = 'r' AND relpersistence = 'u'",
    )
    return rq_url, pq_url, await server_info(pq_url) | {"pgqueuer_unlogged_tables": unlogged}


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return round(ours / theirs, 3)


def wake_ratio(results: dict[str, dict[str, Any]], key: str, cut: str) -> float | None:
    return ratio(results["wakeup/reelqueue"][key][cut], results["wakeup/pgqueuer"][key][cut])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5_000, help="tasks per throughput run")
    parser.add_argument("--samples", type=int, default=200, help="wake-up samples per system")
    parser.add_argument(
        "--rounds", type=int, default=5, help="throughput runs per system, taken in turns"
    )
    args = parser.parse_args()
    configure_logging("warning")
    bench_started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reelqueue-bench-") as tmp:
        rq_url, pq_url, info = asyncio.run(prepare(start_embedded_server(Path(tmp) / "data")))
        emit({"run": "setup", "cpus": multiprocessing.cpu_count()} | info)
        results: dict[str, dict[str, Any]] = {}

        def record(run: str, system: str, figures: dict[str, Any]) -> None:
            results[f"{run}/{system}"] = figures
            emit({"run": run, "system": system} | figures)

        record("enqueue_10000", "reelqueue", asyncio.run(enqueue_reelqueue(rq_url, None)))
        record("enqueue_10000", "pgqueuer", asyncio.run(enqueue_pgqueuer(pq_url)))

        for workers, batch in ((1, 1), (5, 10)):
            run = f"throughput_{workers}w_batch{batch}"
            rounds: dict[str, list[dict[str, Any]]] = {"reelqueue": [], "pgqueuer": []}
            for _ in range(args.rounds):
                asyncio.run(fill_queue(rq_url, args.jobs, SEEN))
                rounds["reelqueue"].append(
                    throughput("reelqueue", reelqueue_drainer, rq_url, args.jobs, workers, batch)
                )
                asyncio.run(fill_pgqueuer(pq_url, args.jobs))
                rounds["pgqueuer"].append(
                    throughput("pgqueuer", pgqueuer_drainer, pq_url, args.jobs, workers, batch)
                )
            for system, runs in rounds.items():
                record(run, system, median_round(runs))

        asyncio.run(empty_queue(rq_url))
        asyncio.run(reset_pgqueuer(pq_url))
        record(
            "wakeup",
            "reelqueue",
            wake_latency(reelqueue_consumer, "reelqueue", rq_url, args.samples),
        )
        record(
            "wakeup", "pgqueuer", wake_latency(pgqueuer_consumer, "pgqueuer", pq_url, args.samples)
        )

    def both(run: str, key: str) -> float | None:
        return ratio(results[f"{run}/reelqueue"][key], results[f"{run}/pgqueuer"][key])

    wake = results["wakeup/reelqueue"]["to_claim_ms"]
    enqueue_s = results["enqueue_10000/reelqueue"]["median_s"]
    one, five = (
        both("throughput_1w_batch1", "jobs_per_s"),
        both("throughput_5w_batch10", "jobs_per_s"),
    )
    summary = {
        "run": "summary",
        "ratios_reelqueue_over_pgqueuer": {
            "throughput_1w_batch1": one,
            "throughput_5w_batch10": five,
            "enqueue_10000_one_call_seconds": both("enqueue_10000", "median_s"),
            "wakeup_to_claim_p50": wake_ratio(results, "to_claim_ms", "p50"),
            "wakeup_to_claim_p95": wake_ratio(results, "to_claim_ms", "p95"),
            "wakeup_to_handler_p95": wake_ratio(results, "to_handler_ms", "p95"),
        },
        "targets": {
            "throughput_1w_at_least_pgqueuer": one is not None and one >= 1,
            "throughput_5w_at_least_pgqueuer": five is not None and five >= 1,
            "wakeup_p95_under_50ms": wake["p95"] < 50,
            "enqueue_10000_under_0_5s": enqueue_s is not None and enqueue_s < 0.5,
        },
        "bench_seconds": round(time.perf_counter() - bench_started, 1),
    }
    emit(summary)


if __name__ == "__main__":
    main()
