"""A recent read: the creator's statuses set lately, in one query, without our own writes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.config import DEFAULT_CHANNELS
from reelqueue.ingest import Poller, Reactor
from reelqueue.ingest.poller import creator_statuses
from reelqueue.notion import NotionClient
from reelqueue.sandbox import SandboxAdmin
from reelqueue.service import load_calendars
from reelqueue.statuses import Kind, StatusTable
from tests.fixtures.service import service_settings

TABLE = StatusTable()


def status(label: str) -> dict[str, object]:
    return {"Status": {"status": {"name": label}}}


async def test_a_recent_read_takes_the_creators_statuses_and_skips_our_writes(
    sandbox: SandboxAdmin, engine: AsyncEngine
) -> None:
    await sandbox.reset(rps=1000, burst=1000, videos=6, queued=1, age_s=600)
    pages = await sandbox.pages()
    _old_queued, ours, cancelled, reprioritised, queued, _untouched = [p["id"] for p in pages]
    priority = pages[3]["properties"]["Priority"]["select"]
    other = "Low" if priority and priority["name"] == "High" else "High"
    edits_began = datetime.now(UTC)
    await sandbox.edit([ours], status("Processing"), author="bot")
    await sandbox.edit([cancelled], status("Cancelled"))
    await sandbox.edit([reprioritised], status("Generating Video"), author="bot")
    await sandbox.edit([reprioritised], {"Priority": {"select": {"name": other}}})
    await sandbox.edit([queued], status("Queued"))
    async with NotionClient(
        sandbox.token, base_url=sandbox.base_url, rate_limit=1000, burst=1000
    ) as notion:
        ((_, schema),) = await load_calendars(
            notion, service_settings(sandbox), TABLE, DEFAULT_CHANNELS
        )
        poller = Poller(engine, notion, schema, Reactor(TABLE, DEFAULT_CHANNELS), TABLE)
        result = await poller.recent(edits_began)

    assert result.queries == 1
    # A person's edit of a page at a working status asks nothing: only the creator's statuses.
    assert result.seen == {cancelled, queued}, "the cancelled and the queued page, nothing else"
    assert result.pages == 2
    assert result.summary["created"] == 1
    assert result.summary["ignored"] == 1


def test_the_statuses_a_creator_sets_are_all_read() -> None:
    wanted = set(creator_statuses(TABLE))
    assert {"queued", "cancelled", "draft"} <= wanted
    assert {row.approval for row in TABLE if row.approval} <= wanted
    assert set(TABLE.statuses_of(Kind.ERROR)) <= wanted
    assert not wanted & set(TABLE.statuses_of(Kind.RUNNING)), "our own working statuses stay out"
