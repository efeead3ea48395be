"""One page with values the database cannot store, or that make no sense, affects only itself."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import structlog
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.calendar import PropertyNames
from reelqueue.config import Channel, Channels
from reelqueue.ingest import PageSnapshot, Reactor
from reelqueue.queue import TaskRecord, load_tasks_by_page
from reelqueue.sandbox import SandboxAdmin
from reelqueue.service import Service
from reelqueue.statuses import StatusTable
from tests.fixtures.service import StartService, fetchval, ready, until
from tests.strategies import page_properties
from tests.web.helpers import event_body, sign

CHANNELS = Channels(channels=(Channel(id="science", name="Science"),))
TABLE = StatusTable()
QUEUED = {"Status": {"status": {"name": "Queued"}}}
TOKEN = "secret_poison_webhook_token"
# 2,000 UTF-16 units: what Notion holds in one rich-text element, emoji counted twice.
LONG_TOPIC = ("🎬 שלום مرحبا \u202eolleh\u202c ")[:19] * 100


def rich(value: Any) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": value, "link": None}, "plain_text": value}]


def calendar_page(**props: Any) -> dict[str, Any]:
    """A Queued calendar page as Notion returns it, with `props` replacing its properties."""
    properties: dict[str, Any] = {
        "Title": {"id": "title", "type": "title", "title": rich("Why ice floats")},
        "Channel": {"id": "c", "type": "select", "select": {"id": "1", "name": "science"}},
        "Topic": {"id": "t", "type": "rich_text", "rich_text": rich("Density of ice")},
        "Status": {"id": "s", "type": "status", "status": {"id": "2", "name": "Queued"}},
        "Priority": {"id": "p", "type": "select", "select": None},
        "Error Log": {"id": "e", "type": "rich_text", "rich_text": []},
        "YouTube URL": {"id": "u", "type": "url", "url": None},
    }
    properties.update(props)
    return {
        "object": "page",
        "id": str(uuid.uuid4()),
        "last_edited_time": "2026-12-03T12:00:00.000Z",
        "last_edited_by": {"object": "user", "id": "person-1"},
        "parent": {"type": "data_source_id", "data_source_id": str(uuid.uuid4())},
        "in_trash": False,
        "properties": properties,
    }


def snapshot(page: dict[str, Any]) -> PageSnapshot:
    return PageSnapshot.from_page(page, PropertyNames())


async def react(engine: AsyncEngine, pages: list[dict[str, Any]]) -> None:
    async with engine.begin() as conn:
        await Reactor(TABLE, CHANNELS).react(conn, [snapshot(p) for p in pages])


async def tasks_of(engine: AsyncEngine, pages: list[dict[str, Any]]) -> dict[str, TaskRecord]:
    async with engine.connect() as conn:
        return await load_tasks_by_page(conn, [snapshot(p).page_id for p in pages])


def good_pages(count: int) -> list[dict[str, Any]]:
    return [calendar_page() for _ in range(count)]


async def test_odd_values_in_one_batch_cost_only_their_own_pages(engine: AsyncEngine) -> None:
    surrogate = calendar_page(Title={"type": "title", "title": rich("Lone \ud800 surrogate")})
    nul = calendar_page(Topic={"type": "rich_text", "rich_text": rich("Null \x00 topic")})
    number_topic = calendar_page(Topic={"type": "rich_text", "rich_text": rich(5)})
    number_title = calendar_page(Title={"type": "title", "title": [{"text": {"content": 7}}]})
    retyped_topic = calendar_page(Topic={"type": "number", "number": 5})
    unnamed = calendar_page(Channel={"type": "select", "select": {"id": "x", "color": "red"}})
    good = good_pages(10)

    odd = [surrogate, nul, number_topic, number_title, retyped_topic, unnamed]
    await react(engine, [*odd, *good])

    tasks = await tasks_of(engine, [*odd, *good])
    assert [tasks[snapshot(p).page_id].status for p in good] == ["queued"] * 10
    cleaned = tasks[snapshot(surrogate).page_id]
    assert (cleaned.status, cleaned.title) == ("queued", "Lone \ufffd surrogate")
    assert tasks[snapshot(nul).page_id].topic == "Null  topic"
    for page, holds in ((number_topic, "a number"), (retyped_topic, "a number value")):
        task = tasks[snapshot(page).page_id]
        assert task.status == "invalid"
        assert task.error_log.startswith(f"Topic holds {holds}, not text: write the topic as text")
    task = tasks[snapshot(number_title).page_id]
    assert task.error_log.startswith("Title holds a number, not text: write the title as text")
    task = tasks[snapshot(unnamed).page_id]
    assert task.status == "invalid"
    assert "Channel is empty: choose one of science" in task.error_log


async def test_a_page_the_database_refuses_becomes_invalid_input_alone(
    engine: AsyncEngine,
) -> None:
    # Stands in for any value PostgreSQL refuses that reading did not clean.
    async with engine.begin() as conn:
        await conn.execute(
            text("ALTER TABLE tasks ADD CONSTRAINT no_poison CHECK (title NOT LIKE '%poison%')")
        )
    refused = calendar_page(Title={"type": "title", "title": rich("A poison title")})
    good = good_pages(10)

    await react(engine, [*good[:5], refused, *good[5:]])

    tasks = await tasks_of(engine, [refused, *good])
    assert [tasks[snapshot(p).page_id].status for p in good] == ["queued"] * 10
    task = tasks[snapshot(refused).page_id]
    assert task.status == "invalid"
    assert task.error_log.startswith("reelqueue could not store this entry")
    assert "no_poison" in task.error_log
    assert task.error_log.endswith("then set Status to Queued again.")
    outbox = await _scalar(engine, "SELECT count(*) FROM outbox WHERE task_id = :t", t=task.id)
    assert outbox == 1, "push-back takes Invalid Input and the reason to the page"

    requeued = calendar_page(Title={"type": "title", "title": rich("Fine at first")})
    await react(engine, [requeued])
    requeued["properties"]["Title"]["title"] = rich("Now poison")
    requeued["properties"]["Status"]["status"]["name"] = "Cancelled"
    await react(engine, [requeued])
    requeued["properties"]["Status"]["status"]["name"] = "Queued"
    await react(engine, [requeued, *good_pages(2)])
    assert (await tasks_of(engine, [requeued]))[snapshot(requeued).page_id].status == "invalid"


async def _scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(text(sql), params)


async def test_arbitrary_property_values_never_stop_the_good_pages(engine: AsyncEngine) -> None:
    loop = asyncio.get_running_loop()

    async def one_batch(props: dict[str, Any]) -> None:
        odd = calendar_page(**props)
        good = good_pages(3)
        await react(engine, [good[0], odd, *good[1:]])
        tasks = await tasks_of(engine, [odd, *good])
        assert [tasks[snapshot(p).page_id].status for p in good] == ["queued"] * 3
        task = tasks.get(snapshot(odd).page_id)
        if task is not None:
            stored = [task.title, task.topic, task.channel, task.error_log]
            assert not any("\x00" in value for value in stored), "PostgreSQL text holds no NUL"
            assert task.status in ("queued", "invalid")
            assert task.status == "queued" or task.error_log

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(props=page_properties())
    def check(props: dict[str, Any]) -> None:
        asyncio.run_coroutine_threadsafe(one_batch(props), loop).result()

    await asyncio.to_thread(check)


async def test_a_nul_title_and_a_long_topic_do_not_hold_up_the_batch(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    await start_service(subscribed=True)
    nul, long, empty, *good = [p["id"] for p in await sandbox.pages()][:13]
    # The admin client sends JSON as UTF-8; the NUL goes escaped, as Notion's own clients do.
    await _edit_raw(sandbox, [nul], {"Title": {"title": [{"text": {"content": "Null \x00 x"}}]}})
    await sandbox.edit([long], {"Topic": {"rich_text": [{"text": {"content": LONG_TOPIC}}]}})
    await sandbox.edit([empty], {"Channel": {"select": None}})

    await sandbox.edit([nul, long, empty, *good], QUEUED)

    async def all_in() -> bool:
        count = await fetchval(database_url, "SELECT count(*) FROM tasks")
        return bool(count == 13)

    await until(all_in, within_s=15)
    status = "SELECT status FROM tasks WHERE notion_page_id = ANY($1::text[])"
    assert (
        await fetchval(database_url, status.replace("status", "array_agg(status)"), good)
        == ["queued"] * 10
    )
    assert await _value(database_url, "title", nul) == "Null  x"
    assert await _value(database_url, "topic", long) == LONG_TOPIC
    assert await _value(database_url, "status", empty) == "invalid"
    assert "Channel is empty" in str(await _value(database_url, "error_log", empty))


async def _value(database_url: str, column: str, page: str) -> Any:
    return await fetchval(database_url, f"SELECT {column} FROM tasks WHERE notion_page_id=$1", page)


async def _edit_raw(sandbox: SandboxAdmin, pages: list[str], properties: dict[str, Any]) -> None:
    body = json.dumps({"page_ids": pages, "properties": properties})
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{sandbox.base_url}/_sandbox/edit",
            content=body,
            headers={"content-type": "application/json"},
        )
    answer.raise_for_status()


def edit_event(sandbox: SandboxAdmin, page: str) -> bytes:
    """The page.properties_updated event Notion sends for a creator's edit of `page`."""
    parent = {
        "id": sandbox.database_id,
        "type": "database",
        "data_source_id": sandbox.data_source_id,
    }
    return event_body(page, str(uuid.uuid4()), data={"parent": parent}, timestamp=None)


async def test_a_page_deleted_or_unshared_right_after_queued_is_logged(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    service = await start_service(notion_webhook_token=SecretStr(TOKEN), poll_interval_s=1.0)
    await ready(service)
    deleted, unshared, good = [p["id"] for p in await sandbox.pages()][:3]
    with structlog.testing.capture_logs() as logs:
        await sandbox.edit([deleted, unshared, good], QUEUED)
        await sandbox.delete_page(deleted)
        await sandbox.unshare([unshared])
        # Their edits' events arrive after the pages went: queries no longer show them.
        async with httpx.AsyncClient(base_url=service.base_url) as client:
            for page in (deleted, unshared, good):
                raw = edit_event(sandbox, page)
                answer = await client.post(
                    "/webhooks/notion",
                    content=raw,
                    headers={"x-notion-signature": sign(raw, TOKEN)},
                )
                assert answer.status_code == 200

        def gone(page: str) -> list[dict[str, Any]]:
            return [e for e in logs if e.get("notion_page_id") == page and "gone" in e["event"]]

        async def both_logged() -> bool:
            return bool(gone(deleted) and gone(unshared))

        await until(both_logged, within_s=15)
        await until(lambda: _settled(service), within_s=5)
    assert [(e["why"], e["status"]) for e in gone(deleted)] == [
        ("it was moved to the trash", "Queued")
    ]
    assert [e["why"] for e in gone(unshared)] == [
        "it is no longer shared with the integration (Notion answers 404)"
    ]
    assert await _value(database_url, "status", good) == "queued"
    assert await fetchval(database_url, "SELECT count(*) FROM tasks") == 1


async def _settled(service: Service) -> bool:
    assert service.notion is not None
    return service.notion.limiter.waiting == 0
