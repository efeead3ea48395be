"""Databases for benchmarks: a fresh one per run, a queue filled with tasks, and what they read."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.db import create_engine, ensure_database, upgrade, with_database
from reelqueue.queue import NewTask, insert_tasks
from reelqueue.statuses import StatusTable

CHANNELS = ("science", "history")
# Where a task with no-op steps ends its run: the gate after its assets.
DONE = "assets_ready"
# Tasks that reached DONE and the last one's time, on the server's clock (the completing
# transaction's now()).
COMPLETED = (
    "SELECT count(*), extract(epoch FROM max(created_at))::float8 FROM task_events"
    f" WHERE to_status = '{DONE}'"
)


async def fresh_database(server: str) -> str:
    """A new empty database on the benchmark's server."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await ensure_database(server, "postgres")
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin, name)


async def queue_database(server: str) -> str:
    """A new database on the benchmark's server, migrated to reelqueue's newest schema."""
    url = await fresh_database(server)
    await upgrade(url)
    return url


async def execute(url: str, *statements: str) -> None:
    """Run SQL statements in turn on one connection."""
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def count(url: str, sql: str) -> int:
    """The integer one SQL query answers (0 for NULL)."""
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(sql) or 0)
    finally:
        await conn.close()


async def server_info(url: str) -> dict[str, Any]:
    """The server's version and the durability settings a figure depends on."""
    conn = await asyncpg.connect(url)
    try:
        return {
            "postgres": await conn.fetchval("SHOW server_version"),
            "fsync": await conn.fetchval("SHOW fsync"),
            "synchronous_commit": await conn.fetchval("SHOW synchronous_commit"),
        }
    finally:
        await conn.close()


async def server_clock(url: str) -> float:
    """The server's clock now, in epoch seconds (the clock completions are stamped with)."""
    conn = await asyncpg.connect(url)
    try:
        return float(await conn.fetchval("SELECT extract(epoch FROM clock_timestamp())"))
    finally:
        await conn.close()


async def completions(
    url: str, sql: str, *, wait_for: int = 0, within_s: float = 0.0
) -> tuple[int, float]:
    """The completions `sql` counts and the last one's epoch seconds, read every 50 ms
    until `wait_for` are in or `within_s` has passed."""
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + within_s
        while True:
            done, last = await conn.fetchrow(sql)
            if done >= wait_for or time.monotonic() > deadline:
                return int(done), float(last or 0.0)
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


def new_tasks(n: int, seen: dict[str, Any]) -> list[NewTask]:
    """n queued tasks over CHANNELS in turn, each of its own page, whose Notion fields were `seen`
    (as the page showed them: then no push-back; empty: each task also gets an outbox row)."""
    return [
        NewTask(
            notion_page_id=str(uuid.uuid4()),
            data_source_id="bench",
            channel=CHANNELS[i % len(CHANNELS)],
            title=f"bench {i}",
            topic="",
            story_direction="",
            priority=1,
            status="queued",
            notion_seen=seen,
            error_log="",
        )
        for i in range(n)
    ]


async def insert_in_chunks(conn: AsyncConnection, tasks: list[NewTask], chunk: int) -> None:
    """`tasks` through `insert_tasks`, `chunk` per call, in the caller's transaction."""
    for start in range(0, len(tasks), chunk):
        await insert_tasks(conn, tasks[start : start + chunk], actor="bench", table=StatusTable())


async def empty_queue(url: str) -> None:
    """No tasks, history or outbox rows, ids from 1 again."""
    await execute(url, "TRUNCATE tasks, task_events, outbox RESTART IDENTITY")


async def fill_queue(url: str, n: int, seen: dict[str, Any], chunk: int = 2_000) -> None:
    """An empty queue, then n tasks from `new_tasks` in one transaction, `chunk` per call,
    analysed as autovacuum would."""
    await empty_queue(url)
    tasks = new_tasks(n, seen)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await insert_in_chunks(conn, tasks, chunk)
    finally:
        await engine.dispose()
    await execute(url, "ANALYZE tasks", "ANALYZE task_events", "ANALYZE outbox")
