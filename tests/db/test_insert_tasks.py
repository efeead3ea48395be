"""insert_tasks: created tasks, their history and outbox rows, and the NOTIFYs, in one call."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.queue import NewTask, TaskRecord, insert_tasks, load_tasks
from reelqueue.queue.tasks import OUTBOX_CHANNEL, TASKS_CHANNEL
from reelqueue.statuses import StatusTable

QUEUED_PAGE = {"status": "Queued", "priority": None, "error_log": "", "youtube_url": None}


def new_task(page: str, **overrides: Any) -> NewTask:
    """A NewTask for `page` whose Notion page already shows Queued, unless overridden."""
    values: dict[str, Any] = {
        "notion_page_id": page,
        "data_source_id": "source-1",
        "channel": "science",
        "title": f"title {page}",
        "topic": "topic",
        "story_direction": "story",
        "priority": 2,
        "status": "queued",
        "notion_seen": dict(QUEUED_PAGE),
        "error_log": "",
    }
    return NewTask(**(values | overrides))


async def insert(
    engine: AsyncEngine, tasks: Sequence[NewTask], *, actor: str = "tester", reason: str = "why"
) -> list[TaskRecord]:
    """insert_tasks in a transaction of its own."""
    async with engine.begin() as conn:
        return await insert_tasks(conn, tasks, actor=actor, table=StatusTable(), reason=reason)


async def fetch(engine: AsyncEngine, sql: str) -> list[tuple[Any, ...]]:
    """All rows of a query, as tuples."""
    async with engine.connect() as conn:
        return [tuple(row) for row in (await conn.execute(text(sql))).all()]


async def test_returns_the_created_tasks_in_order_as_a_read_gives_them(
    engine: AsyncEngine,
) -> None:
    tasks = [new_task(f"page-{i}", priority=i % 3, title=f"video {i}") for i in range(5)]
    created = await insert(engine, tasks)
    async with engine.connect() as conn:
        stored = await load_tasks(conn)
    assert created == stored
    assert [task.notion_page_id for task in created] == [f"page-{i}" for i in range(5)]
    assert [task.id for task in created] == sorted(task.id for task in created)


async def test_text_and_json_survive_the_round_trip(engine: AsyncEngine) -> None:
    odd = 'quote " backslash \\ slash / newline \n tab \t accents é ñ emoji 😀 {braces} [x]'
    seen = QUEUED_PAGE | {"extra": {"nested": [1, 2.5, None, True, odd]}}
    task = new_task(
        "page-odd",
        data_source_id=odd,
        channel=odd,
        title=odd,
        topic=odd,
        story_direction=odd,
        notion_seen=seen,
    )
    [created] = await insert(engine, [task])
    async with engine.connect() as conn:
        [stored] = await load_tasks(conn)
    assert created == stored
    assert stored.title == odd
    assert stored.notion_seen == seen
    assert created.notion_seen is not task.notion_seen


async def test_pages_that_have_a_task_are_skipped(engine: AsyncEngine) -> None:
    [existing] = await insert(engine, [new_task("page-a", title="first")])
    created = await insert(
        engine,
        [
            new_task("page-a", title="again"),
            new_task("page-b", title="b first"),
            new_task("page-b", title="b second"),
            new_task("page-c"),
        ],
    )
    assert [(task.notion_page_id, task.title) for task in created] == [
        ("page-b", "b first"),
        ("page-c", "title page-c"),
    ]
    async with engine.connect() as conn:
        stored = {task.notion_page_id: task for task in await load_tasks(conn)}
    assert stored["page-a"] == existing
    assert [stored["page-b"], stored["page-c"]] == created
    events = await fetch(engine, "SELECT task_id FROM task_events ORDER BY id")
    assert events == [(existing.id,), *((task.id,) for task in created)]


async def test_nothing_to_create_writes_nothing(engine: AsyncEngine) -> None:
    assert await insert(engine, []) == []
    await insert(engine, [new_task("page-a")])
    assert await insert(engine, [new_task("page-a"), new_task("page-a")]) == []
    assert await fetch(engine, "SELECT count(*) FROM tasks") == [(1,)]
    assert await fetch(engine, "SELECT count(*) FROM task_events") == [(1,)]


async def test_each_created_task_gets_its_first_history_row(engine: AsyncEngine) -> None:
    created = await insert(
        engine,
        [new_task("page-a"), new_task("page-b", status="invalid", error_log="no channel")],
        actor="notion",
        reason="set to Queued in Notion",
    )
    events = await fetch(
        engine, "SELECT task_id, from_status, to_status, actor, reason FROM task_events ORDER BY id"
    )
    assert events == [
        (created[0].id, None, "queued", "notion", "set to Queued in Notion"),
        (created[1].id, None, "invalid", "notion", "set to Queued in Notion"),
    ]


async def test_an_outbox_row_only_where_the_page_needs_a_write(engine: AsyncEngine) -> None:
    created = await insert(
        engine,
        [
            new_task("page-shows-queued"),
            new_task("page-shows-draft", notion_seen=QUEUED_PAGE | {"status": "Draft"}),
            new_task("page-invalid", status="invalid", error_log="no channel"),
            new_task(
                "page-shows-invalid",
                status="invalid",
                error_log="no channel",
                notion_seen=QUEUED_PAGE | {"status": "Invalid Input", "error_log": "no channel"},
            ),
            new_task("page-old-error", notion_seen=QUEUED_PAGE | {"error_log": "stale"}),
        ],
    )
    ids = {task.notion_page_id: task.id for task in created}
    outbox = await fetch(
        engine, "SELECT task_id, notion_page_id, properties, sent_at FROM outbox ORDER BY id"
    )
    assert outbox == [
        (ids["page-shows-draft"], "page-shows-draft", {"status": "queued"}, None),
        (ids["page-invalid"], "page-invalid", {"status": "invalid"}, None),
        (ids["page-old-error"], "page-old-error", {"status": "queued"}, None),
    ]


FENCE_CHANNEL = "test_insert_tasks_fence"


async def notifications(database_url: str, engine: AsyncEngine, tasks: list[NewTask]) -> set[str]:
    """The channels notified by inserting `tasks`, as a listener sees them after commit.

    A NOTIFY on a fence channel, sent after the insert committed, arrives after every
    notification of the insert (PostgreSQL delivers them in commit order): once it is
    heard, a channel not heard was not notified.
    """
    heard: set[str] = set()
    fenced = asyncio.Event()
    listener = await asyncpg.connect(database_url)
    try:
        for channel in (OUTBOX_CHANNEL, TASKS_CHANNEL):
            await listener.add_listener(channel, lambda _c, _p, channel, _m: heard.add(channel))
        await listener.add_listener(FENCE_CHANNEL, lambda *_: fenced.set())
        await insert(engine, tasks)
        async with engine.begin() as conn:
            await conn.execute(text(f"NOTIFY {FENCE_CHANNEL}"))
        await asyncio.wait_for(fenced.wait(), 10)
    finally:
        await listener.close()
    return heard


async def test_notifies_push_back_and_workers_only_when_there_is_work(
    database_url: str, engine: AsyncEngine
) -> None:
    runnable_no_push = [new_task("page-a")]
    assert await notifications(database_url, engine, runnable_no_push) == {TASKS_CHANNEL}
    push_not_runnable = [new_task("page-b", status="invalid", error_log="no channel")]
    assert await notifications(database_url, engine, push_not_runnable) == {OUTBOX_CHANNEL}
    both = [new_task("page-c", notion_seen=QUEUED_PAGE | {"status": "Draft"})]
    assert await notifications(database_url, engine, both) == {OUTBOX_CHANNEL, TASKS_CHANNEL}
    already_there = [new_task("page-c", notion_seen=QUEUED_PAGE | {"status": "Draft"})]
    assert await notifications(database_url, engine, already_there) == set()
