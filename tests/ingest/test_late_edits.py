"""A cancel or Draft that comes after publishing is not lost: the page says where the video is."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.ingest.reactions import late_edit_log
from reelqueue.queue import TaskChange, apply_changes, load_tasks_by_page
from reelqueue.statuses import StatusTable
from tests.ingest.test_reactions import page, react, scalar, task_of

URL = "https://youtu.be/abc123"
_ONE_LINE = st.characters(blacklist_categories=("Cc", "Zl", "Zp", "Cs"))


async def publish(engine: AsyncEngine, page_id: str) -> None:
    async with engine.begin() as conn:
        task = (await load_tasks_by_page(conn, [page_id], lock=True))[page_id]
        await apply_changes(
            conn,
            [
                TaskChange(
                    task.id,
                    page_id,
                    task.status,
                    "published",
                    actor="worker:test",
                    values={"youtube_url": URL},
                )
            ],
            StatusTable(),
        )


@pytest.mark.parametrize("label", ["Cancelled", "Draft"])
async def test_a_late_edit_keeps_the_video_published_and_says_where_it_is(
    engine: AsyncEngine, label: str
) -> None:
    queued = page("Queued")
    await react(engine, queued)
    await publish(engine, queued.page_id)
    pending_before = await scalar(engine, "SELECT count(*) FROM outbox")

    summary = await react(engine, replace(queued, status_label=label))

    task = await task_of(engine, queued.page_id)
    assert summary["too_late"] == 1
    assert task.status == "published"
    assert task.youtube_url == URL
    assert f"{label} was set after the video was published" in task.error_log
    assert URL in task.error_log
    assert task.notion_seen["status"] == label, "what the page showed is remembered"
    assert await scalar(engine, "SELECT count(*) FROM outbox") > pending_before, (
        "the page is written back: Published, with the Error Log line"
    )


async def test_the_same_late_edit_read_twice_writes_one_line(engine: AsyncEngine) -> None:
    queued = page("Queued")
    await react(engine, queued)
    await publish(engine, queued.page_id)
    await react(engine, replace(queued, status_label="Cancelled"))
    await react(engine, replace(queued, status_label="Cancelled"))
    task = await task_of(engine, queued.page_id)
    assert task.error_log.count("was set after the video was published") == 1


@given(
    previous=st.text(max_size=300),
    label=st.sampled_from(["Cancelled", "Draft"]),
    url=st.one_of(st.none(), st.text(_ONE_LINE, min_size=1, max_size=80)),
)
def test_the_late_line_appears_once_and_earlier_lines_stay(
    previous: str, label: str, url: str | None
) -> None:
    once = late_edit_log(previous, label, "Published", url)
    twice = late_edit_log(once, label, "Published", url)
    line = once.splitlines()[-1] if once.splitlines() else once
    assert line.startswith(f"{label} was set after the video was published")
    assert twice == once, "applying it again changes nothing"
    for old in previous.splitlines():
        if old.strip():
            assert old in once.splitlines()
