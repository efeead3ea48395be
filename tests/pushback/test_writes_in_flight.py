"""Our writes and reads of the same page cross on the wire: neither is taken for a creator's edit.

A read begun before one of our writes settled may show the page from before it; a task
that moves while its write is on the way leaves the page behind. Both against the sandbox
over HTTP and a real database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.calendar import CalendarSchema
from reelqueue.config import DEFAULT_CHANNELS
from reelqueue.ingest import Poller, Reactor
from reelqueue.ingest.snapshot import PageSnapshot
from reelqueue.notion import NotionClient, PageWrites
from reelqueue.pushback import Pusher
from reelqueue.queue import TaskChange, apply_changes, load_tasks_by_page
from reelqueue.sandbox import SandboxAdmin
from reelqueue.service import load_calendars
from reelqueue.statuses import StatusTable
from tests.fixtures.service import service_settings, until

TABLE = StatusTable()
URL = "https://youtu.be/in-flight"


@dataclass
class Sync:
    """Ingest and push-back of one calendar sharing one record of our page writes."""

    notion: NotionClient
    schema: CalendarSchema
    writes: PageWrites
    poller: Poller
    pusher: Pusher
    engine: AsyncEngine

    async def task(self, page_id: str) -> Any:
        async with self.engine.connect() as conn:
            return (await load_tasks_by_page(conn, [page_id]))[page_id]

    async def move(self, page_id: str, to: str, *, push: bool = True, **values: Any) -> None:
        """Change the task as a worker (push) or a reaction to a read (no push) would."""
        async with self.engine.begin() as conn:
            task = (await load_tasks_by_page(conn, [page_id], lock=True))[page_id]
            change = TaskChange(
                task.id, page_id, task.status, to, actor="test", values=values, push=push
            )
            await apply_changes(conn, [change], TABLE)


@pytest.fixture
async def sync(sandbox: SandboxAdmin, engine: AsyncEngine) -> AsyncIterator[Sync]:
    await sandbox.reset(rps=1000, burst=1000, videos=1, queued=1, latency_ms=150)
    async with NotionClient(
        sandbox.token, base_url=sandbox.base_url, rate_limit=1000, burst=1000
    ) as notion:
        ((_, schema),) = await load_calendars(
            notion, service_settings(sandbox), TABLE, DEFAULT_CHANNELS
        )
        writes = PageWrites()
        reactor = Reactor(TABLE, DEFAULT_CHANNELS, page_writes=writes)
        poller = Poller(engine, notion, schema, reactor, TABLE)
        pusher = Pusher(engine, notion, {schema.data_source_id: schema}, TABLE, page_writes=writes)
        yield Sync(notion, schema, writes, poller, pusher, engine)


async def read_page(sync: Sync, page_id: str) -> PageSnapshot:
    page = await sync.notion.retrieve_page(page_id)
    return PageSnapshot.from_page(sync.schema.keyed(page), sync.schema.names)


async def only_page(sandbox: SandboxAdmin) -> str:
    (page,) = await sandbox.pages()
    return str(page["id"])


def label_of(page: dict[str, Any]) -> str:
    return str(page["properties"]["Status"]["status"]["name"])


async def test_a_read_from_before_our_write_is_not_taken_for_a_requeue(
    sandbox: SandboxAdmin, sync: Sync
) -> None:
    page_id = await only_page(sandbox)
    await sync.poller.incremental()
    assert (await sync.task(page_id)).status == "queued"

    read_at = time.monotonic()
    before = await read_page(sync, page_id)  # the page still shows Queued
    await sync.move(page_id, "published", youtube_url=URL)
    assert (await sync.pusher.push_pending()).pages_written == 1
    assert label_of((await sandbox.pages())[0]) == "Published"

    # The old read's reaction lands after our write: its Queued is ours, not a re-queue.
    async with sync.engine.begin() as conn:
        summary = await sync.poller._reactor.react(conn, [before], read_at=read_at)
    assert summary["stale"] == 1
    assert summary.stale == {page_id}
    task = await sync.task(page_id)
    assert task.status == "published", "the video is not made a second time"
    assert task.notion_seen["status"] == "Published"

    # The same page read after the write settled is taken in as it is.
    later = await sync.poller.incremental()
    assert later.summary["stale"] == 0
    assert (await sync.task(page_id)).status == "published"


async def test_a_creators_edit_met_while_our_write_is_in_flight_is_taken_in_by_a_later_read(
    sandbox: SandboxAdmin, sync: Sync
) -> None:
    page_id = await only_page(sandbox)
    await sync.poller.incremental()
    await sandbox.edit([page_id], {"Status": {"status": {"name": "Cancelled"}}})

    with sync.writes.writing(page_id):
        met = await sync.poller.incremental()
    assert met.summary["stale"] == 1
    assert (await sync.task(page_id)).status == "queued", "not yet: the read may be old"

    again = await sync.poller.incremental()
    assert again.summary["cancelled"] == 1
    assert (await sync.task(page_id)).status == "cancelled"


async def test_a_task_that_moves_while_its_write_is_on_the_way_is_written_again(
    sandbox: SandboxAdmin, sync: Sync
) -> None:
    page_id = await only_page(sandbox)
    await sync.poller.incremental()
    await sync.move(page_id, "published", youtube_url=URL)

    push = asyncio.create_task(sync.pusher.push_pending())

    async def on_its_way() -> bool:
        return sync.writes.in_flight() > 0

    await until(on_its_way, within_s=10, every_s=0.005)
    # Meanwhile a read's reaction recorded the creator's Draft (the page showed it then).
    seen = {"status": "Draft", "priority": None, "error_log": "", "youtube_url": None}
    await sync.move(page_id, "draft", push=False, notion_seen=seen)
    await push

    # The Published write landed after the Draft: the page is behind its task again.
    assert label_of((await sandbox.pages())[0]) == "Published"
    again = await sync.pusher.push_pending()
    assert again.pages_written == 1
    assert label_of((await sandbox.pages())[0]) == "Draft"
    assert await sync.pusher.pending_pages() == 0
