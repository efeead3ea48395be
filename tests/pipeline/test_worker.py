"""Workers on a real database: every step once, gates, retries, errors, resume, drain."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.config import Channel, Channels, Settings
from reelqueue.ingest import PageSnapshot, Reactor
from reelqueue.pipeline import (
    DEMO_STEPS,
    DEMO_URL_PREFIX,
    PermanentStepError,
    StepContext,
    StepResult,
    StepSet,
    TransientStepError,
    Worker,
)
from reelqueue.queue import approve_task, retry_task
from reelqueue.statuses import GATES, STEPS, StatusTable
from tests.fixtures.service import until
from tests.pipeline.peaks import channel_peaks, step_peaks

TABLE = StatusTable()
AUTO = Channels(
    channels=(
        Channel(id="science", name="Science", auto_approve=GATES, max_concurrent=50),
        Channel(id="history", name="History", auto_approve=GATES, max_concurrent=50),
    )
)
GATED = Channels(channels=(Channel(id="science", name="Science", max_concurrent=50),))


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "artifacts_dir": tmp_path / "artifacts",
        "demo_step_seconds": 0.0,
        "retry_base_s": 0.05,
        "lease_s": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


async def queue(engine: AsyncEngine, count: int, channels: Channels, **fields: Any) -> list[str]:
    pages = [
        PageSnapshot(
            page_id=str(uuid.uuid4()),
            data_source_id="ds",
            last_edited_time=None,
            last_edited_by="person",
            in_trash=False,
            title=f"Video {n}",
            channel=fields.get("channel") or channels.channels[n % len(channels.channels)].id,
            topic="A topic",
            story_direction="",
            status_label="Queued",
            priority_label=fields.get("priority"),
            error_log="",
            youtube_url=None,
        )
        for n in range(count)
    ]
    async with engine.begin() as conn:
        await Reactor(TABLE, channels).react(conn, pages)
    return [p.page_id for p in pages]


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(text(sql), params)


class Running:
    """A worker run in the background of the test, stopped (and drained) at the end."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(worker.run(self.stop))

    async def went_round(self) -> None:
        """Wake the worker and wait until it has been round its claim loop once more."""
        claimer = self.worker.claimer
        assert claimer is not None
        claimer.went_round.clear()
        self.worker.wake()
        await asyncio.wait_for(claimer.went_round.wait(), 20)

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


@pytest.fixture
async def run_worker(database_url: str, tmp_path: Path) -> AsyncIterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(
        channels: Channels = AUTO,
        steps: StepSet = DEMO_STEPS,
        concurrency: int = 4,
        poll_s: float = 0.5,
        **kw: Any,
    ) -> Running:
        running = Running(
            Worker(database_url, settings(tmp_path, **kw), channels, {"demo": steps},
                   concurrency=concurrency, poll_s=poll_s)
        )  # fmt: skip
        started.append(running)
        return running

    yield start
    for running in started:
        await running.close()


async def all_in(engine: AsyncEngine, status: str, count: int) -> bool:
    found = await scalar(engine, "SELECT count(*) FROM tasks WHERE status = :s", s=status)
    return bool(found == count)


async def test_every_step_of_every_task_runs_exactly_once_to_published(
    engine: AsyncEngine, run_worker: Callable[..., Running]
) -> None:
    await queue(engine, 30, AUTO)
    run_worker(concurrency=8)
    await until(lambda: all_in(engine, "published", 30), within_s=20)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT task_id, reason FROM task_events WHERE reason LIKE '% done'")
            )
        ).all()
    per_task_step = Counter((task_id, reason.removesuffix(" done")) for task_id, reason in rows)
    assert set(per_task_step.values()) == {1}
    assert len(per_task_step) == 30 * len(STEPS)
    urls = await scalar(
        engine, "SELECT count(*) FROM tasks WHERE youtube_url LIKE :p", p=f"{DEMO_URL_PREFIX}%"
    )
    assert urls == 30
    assert await scalar(engine, "SELECT count(*) FROM tasks WHERE locked_by IS NOT NULL") == 0
    assert await scalar(engine, "SELECT max(attempts) FROM tasks") == 1


async def test_a_gate_holds_the_task_until_it_is_approved(
    engine: AsyncEngine, run_worker: Callable[..., Running]
) -> None:
    (page,) = await queue(engine, 1, GATED)

    async def at(status: str) -> bool:
        found = await scalar(engine, "SELECT status FROM tasks WHERE notion_page_id=:p", p=page)
        return bool(found == status)

    running = run_worker(channels=GATED)
    await until(lambda: at("assets_ready"), within_s=20)
    await running.went_round()
    await running.went_round()
    assert await at("assets_ready"), "a gate must hold the task until someone approves"
    task_id = await scalar(engine, "SELECT id FROM tasks WHERE notion_page_id=:p", p=page)
    async with engine.begin() as conn:
        await approve_task(conn, task_id, TABLE)
    await until(lambda: at("video_ready"), within_s=20)


def flaky(failures: int) -> StepSet:
    """Demo steps whose video step fails transiently `failures` times per task."""
    seen: Counter[int] = Counter()

    async def video(ctx: StepContext) -> StepResult:
        seen[ctx.task.id] += 1
        if seen[ctx.task.id] <= failures:
            raise TransientStepError("render farm busy")
        return await DEMO_STEPS["video"](ctx)

    return {**DEMO_STEPS, "video": video}


async def test_a_step_failing_transiently_twice_ends_published_with_attempts_3(
    engine: AsyncEngine, run_worker: Callable[..., Running]
) -> None:
    await queue(engine, 1, AUTO)
    run_worker(steps=flaky(2), max_attempts=3)
    await until(lambda: all_in(engine, "published", 1), within_s=20)
    assert await scalar(engine, "SELECT attempts FROM tasks") == 3
    retries = await scalar(
        engine, "SELECT count(*) FROM task_events WHERE reason LIKE 'video failed%retrying%'"
    )
    assert retries == 2


async def test_a_permanent_failure_shows_the_error_and_a_retry_resumes_there(
    engine: AsyncEngine, run_worker: Callable[..., Running]
) -> None:
    calls: Counter[str] = Counter()

    def counting(step: str) -> Any:
        async def run(ctx: StepContext) -> StepResult:
            calls[step] += 1
            if step == "audio" and calls[step] == 1:
                raise PermanentStepError("voice model rejected the script")
            return await DEMO_STEPS[step](ctx)

        return run

    await queue(engine, 1, AUTO)
    running = run_worker(steps={step: counting(step) for step in STEPS})
    await until(lambda: all_in(engine, "audio_error", 1), within_s=20)
    error_log = await scalar(engine, "SELECT error_log FROM tasks")
    assert "audio failed" in error_log
    assert "voice model rejected the script" in error_log
    assert "attempt 1 of 3" in error_log
    task_id = await scalar(engine, "SELECT id FROM tasks")
    async with engine.begin() as conn:
        await retry_task(conn, task_id, TABLE)
    running.worker.wake()
    await until(lambda: all_in(engine, "published", 1), within_s=20)
    assert calls == {
        "assets": 1, "composites": 1, "video": 1, "audio": 2, "sfx": 1, "assembly": 1, "upload": 1,
    }  # fmt: skip
    outputs = await scalar(engine, "SELECT outputs FROM tasks")
    assert set(outputs) == set(STEPS)


async def test_claims_take_high_priority_first_and_turn_between_channels(
    engine: AsyncEngine, run_worker: Callable[..., Running]
) -> None:
    two = Channels(
        channels=(
            Channel(id="science", name="S", auto_approve=GATES, max_concurrent=100),
            Channel(id="history", name="H", auto_approve=GATES, max_concurrent=100),
        )
    )
    await queue(engine, 10, two, channel="science")
    await queue(engine, 2, two, channel="history")
    urgent = await queue(engine, 1, two, channel="science", priority="High")
    run_worker(channels=two, concurrency=1)
    await until(lambda: all_in(engine, "published", 13), within_s=40)
    async with engine.connect() as conn:
        order = (
            await conn.execute(
                text(
                    "SELECT t.notion_page_id, t.channel FROM task_events e"
                    " JOIN tasks t ON t.id = e.task_id"
                    " WHERE e.reason = 'claimed for assets' ORDER BY e.id"
                )
            )
        ).all()
    assert order[0][0] == urgent[0], "High priority is claimed first"
    assert "history" in [channel for _, channel in order[1:4]], "history waits behind science"


async def test_channel_caps_hold_across_the_fleet(
    engine: AsyncEngine, run_worker: Callable[..., Running]
) -> None:
    capped = Channels(
        channels=(Channel(id="science", name="S", auto_approve=GATES, max_concurrent=2),)
    )
    await queue(engine, 12, capped)
    for _ in range(3):
        run_worker(channels=capped, concurrency=4, demo_step_seconds=0.05)
    await until(lambda: all_in(engine, "published", 12), within_s=60)
    assert await channel_peaks(engine, TABLE) == {"science": 2}, "the cap held and was used"


async def test_stopping_drains_running_steps_and_releases_the_rest(
    engine: AsyncEngine, run_worker: Callable[..., Running]
) -> None:
    await queue(engine, 3, AUTO)
    running = run_worker(demo_step_seconds=30.0, drain_timeout_s=0.5)

    async def claimed() -> bool:
        found = await scalar(engine, "SELECT count(*) FROM tasks WHERE locked_by IS NOT NULL")
        return bool(found == 3)

    await until(claimed, within_s=20)
    await running.close()
    assert await scalar(engine, "SELECT count(*) FROM tasks WHERE locked_by IS NOT NULL") == 0
    assert await scalar(engine, "SELECT count(*) FROM tasks WHERE status = 'queued'") == 3


async def test_wake_ups_resume_after_the_listening_connection_is_killed(
    engine: AsyncEngine, run_worker: Callable[..., Running], database_url: str
) -> None:
    running = run_worker(poll_s=30.0)
    await running.worker.started.wait()
    listener = running.worker.listener
    assert listener is not None
    await asyncio.wait_for(listener.connected.wait(), 10)
    async with engine.connect() as conn:
        killed = await conn.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
        )
    assert killed == 1

    async def reconnected() -> bool:
        return listener.reconnects == 1 and listener.connected.is_set()

    await until(reconnected, within_s=10)
    # The claim loop polls every 30 s: a task published within 10 s was woken by NOTIFY.
    await queue(engine, 1, AUTO)
    await until(lambda: all_in(engine, "published", 1), within_s=10)


async def test_a_step_cap_holds_across_workers(
    engine: AsyncEngine, run_worker: Callable[..., Running]
) -> None:
    await queue(engine, 8, AUTO)
    for _ in range(2):
        run_worker(concurrency=4, demo_step_seconds=0.05, step_caps={"assets": 1})
    await until(lambda: all_in(engine, "published", 8), within_s=60)
    assert (await step_peaks(engine, TABLE))["assets"] == 1, "the cap held and was used"
    assert max((await channel_peaks(engine, TABLE)).values()) > 1, "other steps ran beside it"
