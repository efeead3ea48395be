"""Adding a step with its own gate: a `thumbnail` step and review after the video's.

What a developer adds is rows of the status vocabulary (as statuses.py would hold them)
and a step function in the step set. The queue's SQL is rendered from the vocabulary,
so the database learns the new step at the next upgrade, with no migration: the
thumbnail step is claimed, capped and held at its gate like any other.
"""

from __future__ import annotations

import sys
import types
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.db import create_engine, upgrade
from reelqueue.db.queue_sql import install
from reelqueue.pipeline import DEMO_STEPS, StepContext, StepResult, load_step_sets
from reelqueue.queue import (
    ClaimLimits,
    Finish,
    NewTask,
    TaskChange,
    apply_changes,
    exchange,
    insert_tasks,
)
from reelqueue.statuses import Kind, StatusInfo, StatusTable

LEASE = timedelta(seconds=30)
LIMITS = ClaimLimits(channel_caps={"science": 10}, step_caps={"thumbnail": 1})


def with_thumbnail(rows: StatusTable) -> list[StatusInfo]:
    """The vocabulary with a thumbnail step and gate between the video review and audio."""
    added = []
    for row in rows:
        if row.status == "video_approved":
            added += [
                replace(row, step="thumbnail", next="generating_thumbnail"),
                StatusInfo("generating_thumbnail", "Generating Thumbnail", Kind.RUNNING,
                           step="thumbnail", next="thumbnail_ready", error="thumbnail_error"),
                StatusInfo("thumbnail_ready", "Thumbnail Ready", Kind.GATE, gate="thumbnail",
                           next="thumbnail_approved", approval="thumbnail_approved"),
                StatusInfo("thumbnail_approved", "Thumbnail Approved", Kind.WAITING,
                           step="audio", next="generating_audio"),
            ]  # fmt: skip
        else:
            added.append(row)
    return [*added, StatusInfo("thumbnail_error", "Thumbnail Error", Kind.ERROR, step="thumbnail")]


ROWS = with_thumbnail(StatusTable())
GATE = next(row for row in ROWS if row.gate == "thumbnail")


async def thumbnail(ctx: StepContext) -> StepResult:
    return StepResult(files=(f"{ctx.task.id}-thumbnail.png",))


@pytest.fixture
def studio() -> Iterator[str]:
    """A step set module with every step of the demo plus the thumbnail step."""
    module = types.ModuleType("studio_with_thumbnail")
    module.STEPS = {**DEMO_STEPS, "thumbnail": thumbnail}  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield f"{module.__name__}:STEPS"
    del sys.modules[module.__name__]


@pytest.fixture
async def thumbnailed(empty_database_url: str) -> AsyncIterator[AsyncEngine]:
    """A database upgraded, then given the queue's SQL for the vocabulary with a thumbnail."""
    await upgrade(empty_database_url)
    engine = create_engine(empty_database_url)
    async with engine.begin() as conn:
        await conn.run_sync(install, ROWS)
    yield engine
    await engine.dispose()


async def add(engine: AsyncEngine, status: str) -> int:
    new = NewTask(
        notion_page_id=str(uuid.uuid4()), data_source_id="ds", channel="science",
        title="A video", topic="", story_direction="", priority=1, status=status,
        notion_seen={},
    )  # fmt: skip
    async with engine.begin() as conn:
        (task,) = await insert_tasks(conn, [new], actor="test", table=StatusTable())
    return task.id


def test_a_step_set_with_the_thumbnail_step_loads(studio: str) -> None:
    assert load_step_sets({"studio": studio})["studio"]["thumbnail"] is thumbnail


async def test_the_thumbnail_step_is_claimed_capped_and_waits_at_its_gate(
    thumbnailed: AsyncEngine, empty_database_url: str
) -> None:
    first, second = (
        await add(thumbnailed, "video_approved"),
        await add(thumbnailed, "video_approved"),
    )
    w1, w2 = await asyncpg.connect(empty_database_url), await asyncpg.connect(empty_database_url)
    try:
        one = await exchange(w1, worker_id="w1", claim=5, lease=LEASE, limits=LIMITS)
        assert [(c.task.id, c.step, c.task.status) for c in one.claimed] == [
            (first, "thumbnail", "generating_thumbnail")
        ]
        capped = await exchange(w2, worker_id="w2", claim=5, lease=LEASE, limits=LIMITS)
        assert capped.claimed == [], "one thumbnail at a time across the fleet"

        (held,) = one.claimed
        done = Finish(held.task, held.task.status, [(GATE.status, "thumbnail done")], {})
        finished = await exchange(w1, worker_id="w1", finished=[done], lease=LEASE, limits=LIMITS)
        assert finished.recorded == [True]
        freed = await exchange(w2, worker_id="w2", claim=5, lease=LEASE, limits=LIMITS)
        assert [(c.task.id, c.step) for c in freed.claimed] == [(second, "thumbnail")]
        assert await w1.fetchval("SELECT status FROM tasks WHERE id = $1", first) == GATE.status

        assert GATE.approval is not None
        async with thumbnailed.begin() as conn:
            await apply_changes(
                conn,
                [
                    TaskChange(
                        first, held.task.notion_page_id, GATE.status, GATE.approval,
                        actor="creator", reason="thumbnail review approved in Notion",
                    )
                ],
            )  # fmt: skip
        after = await exchange(w1, worker_id="w1", claim=5, lease=LEASE, limits=LIMITS)
        assert [(c.task.id, c.step, c.task.status) for c in after.claimed] == [
            (first, "audio", "generating_audio")
        ]
    finally:
        await w1.close()
        await w2.close()
