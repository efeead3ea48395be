"""Adding a step with its own gate: a `thumbnail` step and review after the video's.

What a developer adds is rows of the status vocabulary (as statuses.py holds them) and
a step function in the step set (tests/fixtures/thumbnail.py plays both). Everything
else follows from the vocabulary: its steps and gates, the step sets it needs, the
queue's SQL (installed at the next upgrade, with no migration), claims and caps.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.db import create_engine, upgrade
from reelqueue.pipeline import DEMO_STEPS, StepSetError, load_step_sets
from reelqueue.pipeline.registry import check_step_caps
from reelqueue.queue import (
    ClaimLimits,
    Finish,
    NewTask,
    TaskChange,
    apply_changes,
    exchange,
    insert_tasks,
)
from reelqueue.statuses import STEPS, StatusInfo, StatusTable
from tests.fixtures.thumbnail import TABLE, thumbnail, with_thumbnail

LEASE = timedelta(seconds=30)
LIMITS = ClaimLimits(channel_caps={"science": 10}, step_caps={"thumbnail": 1})
GATE = TABLE.gate_status("thumbnail")


def test_the_vocabulary_gains_the_step_and_its_gate_in_pipeline_order() -> None:
    assert TABLE.steps == ("assets", "composites", "video", "thumbnail", "audio", "sfx",
                           "assembly", "upload")  # fmt: skip
    assert TABLE.gates == ("assets", "video", "thumbnail", "audio", "final")
    assert TABLE.waiting_status_for("thumbnail") == "video_approved"
    assert TABLE.running_status_for("thumbnail") == "generating_thumbnail"
    assert TABLE.error_for_step("thumbnail") == "thumbnail_error"
    assert TABLE.gate_for_approval("thumbnail_approved") == GATE
    assert "Thumbnail Ready" in TABLE.labels
    assert StatusTable().steps == STEPS, "the default vocabulary is untouched"


def _without(status: str) -> list[StatusInfo]:
    return [row for row in with_thumbnail() if row.status != status]


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        (_without("thumbnail_error"), "step 'thumbnail' has no error status"),
        (_without("thumbnail_approved"), "next 'thumbnail_approved' is no status"),
        (_without("generating_thumbnail"), "step 'thumbnail' has no running status"),
        ([*with_thumbnail(), with_thumbnail()[0]], "'draft' is listed twice"),
        (_without("cancelled"), "the vocabulary lacks 'cancelled'"),
    ],
)
def test_a_vocabulary_the_queue_cannot_run_is_refused_with_what_is_wrong(
    rows: list[StatusInfo], says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        StatusTable(rows=rows)


def test_step_sets_must_have_the_new_step_and_the_demo_has_it() -> None:
    sets = load_step_sets({"studio": "tests.fixtures.thumbnail:STEPS"}, TABLE.steps)
    assert sets["studio"]["thumbnail"] is thumbnail
    assert set(sets["demo"]) == set(TABLE.steps)
    with pytest.raises(StepSetError, match="lacks the steps thumbnail"):
        load_step_sets({"old": "reelqueue.pipeline:DEMO_STEPS"}, TABLE.steps)
    assert "thumbnail" not in DEMO_STEPS


def test_the_new_step_can_be_capped_and_only_where_it_exists() -> None:
    check_step_caps({"thumbnail": 1}, TABLE.steps)
    with pytest.raises(StepSetError, match="unknown step 'thumbnail'"):
        check_step_caps({"thumbnail": 1})


@pytest.fixture
async def thumbnailed(empty_database_url: str) -> AsyncIterator[AsyncEngine]:
    """A database upgraded for the vocabulary with a thumbnail."""
    await upgrade(empty_database_url, table=TABLE)
    engine = create_engine(empty_database_url)
    yield engine
    await engine.dispose()


async def add(engine: AsyncEngine, status: str) -> int:
    new = NewTask(
        notion_page_id=str(uuid.uuid4()), data_source_id="ds", channel="science",
        title="A video", topic="", story_direction="", priority=1, status=status,
        notion_seen={},
    )  # fmt: skip
    async with engine.begin() as conn:
        (task,) = await insert_tasks(conn, [new], actor="test", table=TABLE)
    return task.id


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
                TABLE,
            )  # fmt: skip
        after = await exchange(w1, worker_id="w1", claim=5, lease=LEASE, limits=LIMITS)
        assert [(c.task.id, c.step, c.task.status) for c in after.claimed] == [
            (first, "audio", "generating_audio")
        ]
    finally:
        await w1.close()
        await w2.close()
