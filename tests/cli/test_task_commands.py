"""`reelqueue tasks retry|cancel|approve|history`, run as a person would."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.cli.helpers import cli_env, one_line_error, reelqueue, seed_tasks


async def set_status(engine: AsyncEngine, task_id: int, status: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE tasks SET status = :s WHERE id = :i"), {"s": status, "i": task_id}
        )


async def status_of(engine: AsyncEngine, task_id: int) -> str:
    async with engine.connect() as conn:
        return str(
            await conn.scalar(text("SELECT status FROM tasks WHERE id = :i"), {"i": task_id})
        )


async def test_retry_cancel_approve_and_history(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    await seed_tasks(engine)
    env = cli_env(tmp_path, DATABASE_URL=database_url)
    await set_status(engine, 1, "video_error")
    await set_status(engine, 2, "audio_ready")

    retried = reelqueue("tasks", "retry", "1", env=env)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == "task 1: queued"
    async with engine.connect() as conn:
        resume = await conn.scalar(text("SELECT resume_step FROM tasks WHERE id = 1"))
    assert resume == "video"

    approved = reelqueue("tasks", "approve", "2", env=env)
    assert approved.stdout.strip() == "task 2: audio_approved"
    assert await status_of(engine, 2) == "audio_approved"

    cancelled = reelqueue("tasks", "cancel", "2", "3", env=env)
    assert cancelled.stdout.splitlines() == ["task 2: cancelled", "task 3: cancelled"]

    history = reelqueue("tasks", "history", "2", "--json", env=env)
    events = json.loads(history.stdout.strip().splitlines()[-1])
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in events] == [
        (None, "queued", "notion"),
        ("audio_ready", "audio_approved", "cli"),
        ("audio_approved", "cancelled", "cli"),
    ]
    async with engine.connect() as conn:
        pending = await conn.scalar(text("SELECT count(*) FROM outbox WHERE task_id = 2"))
    assert pending == 2, "each change is to be written to Notion"


async def test_task_commands_refuse_what_makes_no_sense(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    await seed_tasks(engine)
    env = cli_env(tmp_path, DATABASE_URL=database_url)
    not_at_gate = reelqueue("tasks", "approve", "1", env=env)
    assert not_at_gate.returncode == 2
    assert "not at a review gate" in one_line_error(not_at_gate.stderr)
    active = reelqueue("tasks", "retry", "1", env=env)
    assert "still active; nothing to retry" in one_line_error(active.stderr)
    missing = reelqueue("tasks", "history", "999", env=env)
    assert "task 999 does not exist" in one_line_error(missing.stderr)


async def test_retrying_a_task_whose_page_is_gone_says_it_waits_for_the_page(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    await seed_tasks(engine)
    env = cli_env(tmp_path, DATABASE_URL=database_url)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE tasks SET status = 'cancelled', page_missing = 'deleted' WHERE id = 1")
        )
    retried = reelqueue("tasks", "retry", "1", env=env)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == (
        "task 1: queued, but it starts only once its Notion page is back"
        " (the page was deleted in Notion)"
    )
    assert await status_of(engine, 1) == "queued"
