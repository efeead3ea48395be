"""The short label set on a real database: a shared label read back asks nothing of reelqueue."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.ingest import PageSnapshot, ReactionSummary, Reactor
from reelqueue.statuses import SHORT_LABELS, StatusTable
from tests.ingest.test_reactions import CHANNELS, page, set_status, task_of

SHORT = StatusTable(SHORT_LABELS)


async def react(engine: AsyncEngine, *pages: PageSnapshot) -> ReactionSummary:
    async with engine.begin() as conn:
        return await Reactor(SHORT, CHANNELS).react(conn, pages)


@pytest.mark.parametrize("seen", ["Queued", "In progress"])
@pytest.mark.parametrize("status", ["claimed", "generating_video", "sfx_ready", "uploading"])
async def test_a_shared_label_on_the_page_leaves_the_task_where_it_is(
    engine: AsyncEngine, status: str, seen: str
) -> None:
    entry = page()
    await react(engine, entry)
    await set_status(engine, entry.page_id, status, seen)
    summary = await react(engine, replace(entry, status_label="In progress"))
    assert summary["unchanged"] == 1
    assert (await task_of(engine, entry.page_id)).status == status


async def test_a_shared_label_set_by_hand_on_a_new_entry_makes_no_task(
    engine: AsyncEngine,
) -> None:
    summary = await react(engine, page("In progress"), page("Not started"))
    assert summary["ignored"] == 2


async def test_the_labels_the_creator_sets_still_act(engine: AsyncEngine) -> None:
    entry = page()
    assert (await react(engine, entry))["created"] == 1
    await set_status(engine, entry.page_id, "video_ready", "Video Ready")
    assert (await react(engine, replace(entry, status_label="Video Approved")))["approved"] == 1
    await set_status(engine, entry.page_id, "generating_audio", "In progress")
    assert (await react(engine, replace(entry, status_label="Cancelled")))["cancelled"] == 1
    await set_status(engine, entry.page_id, "published", "Done")
    assert (await react(engine, replace(entry, status_label="Queued")))["requeued"] == 1
