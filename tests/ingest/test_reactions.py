"""Reactions on a real database: what each creator edit does to the queue."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.config import Channel, Channels
from reelqueue.ingest import PageSnapshot, ReactionSummary, Reactor, parse_priority
from reelqueue.queue import TaskRecord, load_tasks_by_page, mark_missing
from reelqueue.statuses import StatusTable

CHANNELS = Channels(
    channels=(
        Channel(id="science", name="Science"),
        Channel(id="history", name="History", active=False),
    )
)
TABLE = StatusTable()
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def page(status: str | None = "Queued", **changes: Any) -> PageSnapshot:
    base = PageSnapshot(
        page_id=str(uuid.uuid4()),
        data_source_id="ds-1",
        last_edited_time=NOW,
        last_edited_by="person-1",
        in_trash=False,
        title="Why the sky is blue",
        channel="science",
        topic="Rayleigh scattering",
        story_direction="",
        status_label=status,
        priority_label="Normal",
        error_log="",
        youtube_url=None,
    )
    return replace(base, **changes)


async def react(engine: AsyncEngine, *pages: PageSnapshot) -> ReactionSummary:
    async with engine.begin() as conn:
        return await Reactor(TABLE, CHANNELS).react(conn, pages)


async def task_of(engine: AsyncEngine, page_id: str) -> TaskRecord:
    async with engine.connect() as conn:
        return (await load_tasks_by_page(conn, [page_id]))[page_id]


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(text(sql), params)


async def set_status(engine: AsyncEngine, page_id: str, status: str, seen: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE tasks SET status = :s,"
                " notion_seen = jsonb_set(notion_seen, '{status}', to_jsonb(CAST(:l AS text)))"
                " WHERE notion_page_id = :p"
            ),
            {"s": status, "l": seen, "p": page_id},
        )


async def test_a_batch_of_queued_pages_becomes_one_task_each(engine: AsyncEngine) -> None:
    pages = [page() for _ in range(20)]
    summary = await react(engine, *pages)
    assert summary["created"] == 20
    assert await scalar(engine, "SELECT count(*) FROM tasks WHERE status = 'queued'") == 20
    history = await scalar(
        engine, "SELECT count(*) FROM task_events WHERE from_status IS NULL AND to_status='queued'"
    )
    assert history == 20
    task = await task_of(engine, pages[0].page_id)
    assert task.title == "Why the sky is blue"
    assert task.channel == "science"
    assert await scalar(engine, "SELECT count(*) FROM outbox") == 0, "pages already say Queued"


async def test_the_same_pages_read_again_change_nothing(engine: AsyncEngine) -> None:
    pages = [page() for _ in range(5)]
    await react(engine, *pages)
    again = await react(engine, *pages, *pages)
    assert again["unchanged"] == 5
    assert await scalar(engine, "SELECT count(*) FROM tasks") == 5
    assert await scalar(engine, "SELECT count(*) FROM task_events") == 5


async def test_drafts_and_unknown_labels_make_no_task(engine: AsyncEngine) -> None:
    summary = await react(engine, page("Draft"), page("Someday"), page(None), page(in_trash=True))
    assert summary["ignored"] == 4
    assert await scalar(engine, "SELECT count(*) FROM tasks") == 0


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"title": ""}, "Title is empty"),
        ({"topic": ""}, "Topic is empty"),
        ({"channel": None}, "Channel is empty: choose one of science"),
        ({"channel": "cooking"}, "Channel 'cooking' is not in the channels file"),
        ({"channel": "history"}, "Channel 'history' is inactive"),
        ({"title": "x" * 101}, "Title is 101 characters long; YouTube allows at most 100"),
    ],
)
async def test_an_invalid_queued_entry_is_flagged_with_its_reason(
    engine: AsyncEngine, changes: dict[str, Any], reason: str
) -> None:
    bad = page(**changes)
    summary = await react(engine, bad)
    assert summary["invalid"] == 1
    task = await task_of(engine, bad.page_id)
    assert task.status == "invalid"
    assert reason in task.error_log
    assert task.error_log.endswith("Then set Status to Queued again.")
    assert await scalar(engine, "SELECT count(*) FROM outbox WHERE task_id = :t", t=task.id) == 1


async def test_a_channel_of_another_live_deployment_is_left_to_it(engine: AsyncEngine) -> None:
    """Two deployments with disjoint channels share a calendar: neither flags the other's pages."""
    theirs, unknown = page(channel="cooking"), page(channel="gardening")
    async with engine.begin() as conn:
        reactor = Reactor(TABLE, CHANNELS, foreign_channels=lambda: frozenset({"cooking"}))
        summary = await reactor.react(conn, [theirs, unknown])
    assert (summary["ignored"], summary["invalid"]) == (1, 1)
    assert (
        await scalar(
            engine, "SELECT count(*) FROM tasks WHERE notion_page_id = :p", p=theirs.page_id
        )
        == 0
    )
    assert (await task_of(engine, unknown.page_id)).status == "invalid"


async def test_queued_again_on_an_active_task_is_a_logged_no_op(engine: AsyncEngine) -> None:
    first = page()
    await react(engine, first)
    await set_status(engine, first.page_id, "generating_video", "Generating Video")
    summary = await react(engine, replace(first, last_edited_time=NOW + timedelta(minutes=1)))
    assert summary["noop"] == 1
    task = await task_of(engine, first.page_id)
    assert task.status == "generating_video"
    pending = await scalar(engine, "SELECT count(*) FROM outbox WHERE task_id = :t", t=task.id)
    assert pending == 1, "the page is put back to the truth (creation itself needed no write)"


@pytest.mark.parametrize(
    ("status", "label", "resume"),
    [
        ("draft", "Draft", None),
        ("published", "Published", None),
        ("cancelled", "Cancelled", None),
        ("video_error", "Video Error", "video"),
        ("upload_error", "Upload Error", "upload"),
    ],
)
async def test_requeue_of_a_requeueable_task(
    engine: AsyncEngine, status: str, label: str, resume: str | None
) -> None:
    first = page()
    await react(engine, first)
    await set_status(engine, first.page_id, status, label)
    summary = await react(engine, replace(first, title="A better title"))
    assert summary["requeued"] == 1
    task = await task_of(engine, first.page_id)
    assert task.status == "queued"
    assert task.resume_step == resume
    assert task.title == "A better title"
    assert task.error_log == ""
    moves = await scalar(
        engine,
        "SELECT count(*) FROM task_events WHERE task_id = :t AND to_status = 'queued'",
        t=task.id,
    )
    assert moves == 2


async def test_requeue_of_an_invalid_entry_is_validated_again(engine: AsyncEngine) -> None:
    bad = page(topic="")
    await react(engine, bad)
    await set_status(engine, bad.page_id, "invalid", "Invalid Input")
    still_bad = await react(engine, replace(bad, channel="cooking"))
    assert still_bad["invalid"] == 1
    assert "cooking" in (await task_of(engine, bad.page_id)).error_log
    await set_status(engine, bad.page_id, "invalid", "Invalid Input")
    fixed = await react(engine, replace(bad, topic="Rayleigh scattering"))
    assert fixed["requeued"] == 1
    task = await task_of(engine, bad.page_id)
    assert task.status == "queued"
    assert task.error_log == ""


async def test_cancel_draft_and_priority_edits(engine: AsyncEngine) -> None:
    a, b, c = page(), page(), page()
    await react(engine, a, b, c)
    summary = await react(
        engine, replace(a, status_label="Cancelled"), replace(b, status_label="Draft"),
        replace(c, priority_label="✹ High"),
    )  # fmt: skip
    assert summary["cancelled"] == 1
    assert summary["drafted"] == 1
    assert summary["reprioritised"] == 1
    assert (await task_of(engine, a.page_id)).status == "cancelled"
    assert (await task_of(engine, b.page_id)).status == "draft"
    assert (await task_of(engine, c.page_id)).priority == parse_priority("High")


async def test_two_edits_within_one_minute_are_both_seen(engine: AsyncEngine) -> None:
    first = page()
    await react(engine, first)
    same_minute = first.last_edited_time
    assert (await react(engine, replace(first, status_label="Draft")))["drafted"] == 1
    again = await react(engine, replace(first, status_label="Queued", last_edited_time=same_minute))
    assert again["requeued"] == 1
    assert (await task_of(engine, first.page_id)).status == "queued"


async def test_an_approval_opens_only_the_gate_the_task_waits_at(engine: AsyncEngine) -> None:
    first = page()
    await react(engine, first)
    await set_status(engine, first.page_id, "assets_ready", "Assets Ready")
    wrong = await react(engine, replace(first, status_label="Video Approved"))
    assert wrong["noop"] == 1
    assert (await task_of(engine, first.page_id)).status == "assets_ready"
    await set_status(engine, first.page_id, "assets_ready", "Assets Ready")
    right = await react(engine, replace(first, status_label="Assets Approved"))
    assert right["approved"] == 1
    assert (await task_of(engine, first.page_id)).status == "assets_approved"


@pytest.mark.parametrize("label", ["Video Error", "Queued"])
async def test_rejecting_at_a_gate_redoes_the_step_before_it(
    engine: AsyncEngine, label: str
) -> None:
    first = page()
    await react(engine, first)
    await set_status(engine, first.page_id, "video_ready", "Video Ready")
    summary = await react(engine, replace(first, status_label=label))
    assert summary["rejected"] == 1
    task = await task_of(engine, first.page_id)
    assert task.status == "composites_ready", "waiting to run the video step again"
    assert (
        await scalar(engine, "SELECT reason FROM task_events ORDER BY id DESC LIMIT 1")
        == f"{label} set at Video Ready in Notion: video is redone"
    )


@pytest.mark.parametrize("label", ["Assembly Error", "Queued"])
async def test_rejecting_the_final_review_redoes_the_assembly(
    engine: AsyncEngine, label: str
) -> None:
    """Final Review shows the assembled video, though Assembly Ready stands between them."""
    first, bystander = page(), page()
    await react(engine, first, bystander)
    await set_status(engine, first.page_id, "final_review", "Final Review")
    summary = await react(
        engine, replace(first, status_label=label), replace(bystander, priority_label="High")
    )
    assert (summary["rejected"], summary["reprioritised"]) == (1, 1)
    task = await task_of(engine, first.page_id)
    assert task.status == "sfx_ready", "waiting to run the assembly step again"
    assert (await task_of(engine, bystander.page_id)).priority == parse_priority("High")
    assert (
        await scalar(engine, "SELECT reason FROM task_events ORDER BY id DESC LIMIT 1")
        == f"{label} set at Final Review in Notion: assembly is redone"
    )


async def test_rejecting_the_first_gate_requeues_the_first_step(engine: AsyncEngine) -> None:
    first = page()
    await react(engine, first)
    await set_status(engine, first.page_id, "assets_ready", "Assets Ready")
    await react(engine, replace(first, status_label="Asset Error"))
    task = await task_of(engine, first.page_id)
    assert task.status == "queued"
    assert task.resume_step == "assets"


async def test_a_page_gone_is_marked_once_and_its_task_cancelled(engine: AsyncEngine) -> None:
    first = page()
    await react(engine, first)
    async with engine.begin() as conn:
        assert await mark_missing(conn, {first.page_id: "deleted"}, TABLE) == 1
    async with engine.begin() as conn:
        assert await mark_missing(conn, {first.page_id: "deleted"}, TABLE) == 0
    task = await task_of(engine, first.page_id)
    assert task.page_missing == "deleted"
    assert task.status == "cancelled"


def test_priority_labels() -> None:
    assert parse_priority("High") == 0
    assert parse_priority("✹ High") == 0
    assert parse_priority("low") == 2
    assert parse_priority(None) == 1
    assert parse_priority("Whenever") == 1
