"""`reelqueue run` as separate processes: one leader, a standby that takes over, clean exits."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelqueue.queue import LEADER_LOCK_KEY
from reelqueue.sandbox import SandboxAdmin
from tests.cli.helpers import RunningService, cli_env, one_line_error, reelqueue, service_env
from tests.fixtures.service import fetchval, until

# pg_locks shows a bigint advisory key as two 32-bit halves (objsubid 1), per database.
LEADER_LOCK_HELD = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND classid = $1 AND objid = $2 AND objsubid = 1"
)


def lock_halves(key: int) -> tuple[int, int]:
    return (key >> 32) & 0xFFFF_FFFF, key & 0xFFFF_FFFF


async def healthz(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        answer = await client.get("/healthz")
    found: dict[str, Any] = answer.json()
    return found


async def is_leader(url: str) -> bool:
    return bool((await healthz(url))["leader"])


async def stood_for_leader(url: str) -> bool:
    """Whether the process has asked for the leader lock at least once (and got an answer)."""
    found = await healthz(url)
    return bool(found["leader"] or found["roles"]["leader"]["state"] == "ok")


@pytest.mark.timeout(180)
async def test_the_standby_takes_over_a_killed_leader_without_duplicates(
    sandbox: SandboxAdmin, database_url: str, tmp_path: Path
) -> None:
    env = service_env(tmp_path, sandbox, database_url)
    first = RunningService(env)
    second: RunningService | None = None
    try:
        first_url = await asyncio.to_thread(first.url)
        await until(lambda: is_leader(first_url), within_s=20)
        second = RunningService(env)
        second_url = await asyncio.to_thread(second.url)
        await until(lambda: stood_for_leader(second_url), within_s=20)
        assert not await is_leader(second_url), "two leaders at once"

        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        # A bound on the wait only: the lock dies with the killed leader's connection, and
        # a lock that outlived it (held for the dead process) would never be taken over.
        await until(lambda: is_leader(second_url), within_s=20)
        holders = await fetchval(database_url, LEADER_LOCK_HELD, *lock_halves(LEADER_LOCK_KEY))
        assert holders == 1, "exactly one process holds the leader lock"

        pages = [p["id"] for p in await sandbox.pages()]
        await sandbox.edit(pages, {"Status": {"status": {"name": "Queued"}}})

        async def all_queued() -> bool:
            return bool(await fetchval(database_url, "SELECT count(*) FROM tasks") == 20)

        await until(all_queued, within_s=15)
        distinct = await fetchval(database_url, "SELECT count(DISTINCT notion_page_id) FROM tasks")
        assert distinct == 20
        created = await fetchval(
            database_url, "SELECT count(*) FROM task_events WHERE from_status IS NULL"
        )
        assert created == 20
    finally:
        first.stop()
        exit_code = second.stop() if second is not None else None
    assert second is not None
    assert exit_code == 0, "".join(second.lines[-20:])
    assert any("stopping" in line for line in second.lines)


def test_run_without_a_token_fails_fast_with_one_line(tmp_path: Path) -> None:
    result = reelqueue("run", env=cli_env(tmp_path, NOTION_DATABASE_IDS="abc"))
    assert result.returncode == 2
    assert "NOTION_TOKEN is not set" in one_line_error(result.stderr)


def test_run_without_database_ids_fails_fast_with_one_line(tmp_path: Path) -> None:
    result = reelqueue("run", env=cli_env(tmp_path, NOTION_TOKEN="secret_x"))
    assert result.returncode == 2
    line = one_line_error(result.stderr)
    assert "NOTION_DATABASE_IDS is not set" in line
    assert "secret_x" not in result.stderr
