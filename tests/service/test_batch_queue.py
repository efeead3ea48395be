"""A creator's batch edit lands in the queue exactly once, whatever Notion and webhooks do."""

from __future__ import annotations

from typing import Any

import pytest

from reelqueue.sandbox import SandboxAdmin
from reelqueue.service import Service
from tests.fixtures.sandbox import status_of
from tests.fixtures.service import StartService, fetchval, ready, until, worker_moves

QUEUED = {"Status": {"status": {"name": "Queued"}}}
QUERY = "POST /v1/data_sources/{id}/query"


def spent(service: Service, before: dict[str, int]) -> dict[str, int]:
    assert service.notion is not None
    now = {e: sum(c.values()) for e, c in service.notion.stats["requests"].items()}
    return {e: n - before.get(e, 0) for e, n in now.items() if n - before.get(e, 0)}


def requests(service: Service) -> dict[str, int]:
    assert service.notion is not None
    return {e: sum(c.values()) for e, c in service.notion.stats["requests"].items()}


async def page_ids(sandbox: SandboxAdmin) -> list[str]:
    return [p["id"] for p in await sandbox.pages()]


async def tasks_for(database_url: str, pages: list[str]) -> int:
    return int(
        await fetchval(
            database_url, "SELECT count(*) FROM tasks WHERE notion_page_id = ANY($1::text[])", pages
        )
    )


def text_of(page: dict[str, Any], name: str) -> str:
    return "".join(t["plain_text"] for t in page["properties"][name]["rich_text"])


async def sandbox_page(sandbox: SandboxAdmin, page_id: str) -> dict[str, Any]:
    return next(p for p in await sandbox.pages() if p["id"] == page_id)


async def test_twenty_queued_in_one_edit_land_once_each_within_the_rate_limit(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    service = await start_service(subscribed=True)
    pages = await page_ids(sandbox)
    before = requests(service)

    await sandbox.edit(pages, QUEUED)
    await until(lambda: _all_in(database_url, pages), within_s=10)
    await until(lambda: _quiet(service), within_s=5)

    assert await fetchval(database_url, "SELECT count(DISTINCT notion_page_id) FROM tasks") == 20
    assert await fetchval(database_url, "SELECT count(*) FROM tasks WHERE status='queued'") == 20
    assert (await sandbox.stats())["rate_limited"] == 0
    assert service.notion is not None
    assert service.notion.stats["rate_limited"] == 0
    ingest = {e: n for e, n in spent(service, before).items() if not e.startswith("PATCH")}
    assert sum(ingest.values()) <= 3, ingest


async def _all_in(database_url: str, pages: list[str]) -> bool:
    return await tasks_for(database_url, pages) == len(pages)


async def _faulted(sandbox: SandboxAdmin) -> bool:
    return bool((await sandbox.stats())["faults_injected"] > 0)


async def _quiet(service: Service) -> bool:
    """No Notion request in flight or waiting: the doorbell's query has run."""
    assert service.notion is not None
    return service.notion.limiter.waiting == 0


async def test_with_every_webhook_lost_the_poller_still_queues_all(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    service = await start_service(poll_interval_s=3.0)
    await ready(service)
    await sandbox.set_faults(webhook_drop_rate=1.0)
    await sandbox.subscribe(f"{service.base_url}/webhooks/notion", verified=True)
    pages = await page_ids(sandbox)
    await sandbox.edit(pages, QUEUED)
    await until(lambda: _all_in(database_url, pages), within_s=3.0 + 5)
    assert (await sandbox.stats())["webhooks"]["dropped"] >= 1


async def test_chaos_still_gives_exactly_one_task_per_page(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    service = await start_service(poll_interval_s=5.0, subscribed=True)
    webhook_chaos: dict[str, Any] = {
        "webhook_duplicate_rate": 0.5,
        "webhook_reorder": True,
        "webhook_delay_ms": [0, 3000],
    }
    codes = [500, 502, 503, 504, 529]
    pages = await page_ids(sandbox)
    # Every request fails at first, so the batch's first reads surely meet 5xx; then 20%.
    await sandbox.set_faults(error_rate=1.0, status_codes=codes, **webhook_chaos)
    await sandbox.edit(pages, QUEUED)
    await until(lambda: _faulted(sandbox), within_s=10)
    await sandbox.set_faults(error_rate=0.2, status_codes=codes, **webhook_chaos)
    await until(lambda: _all_in(database_url, pages), within_s=30)
    await until(lambda: _quiet(service), within_s=10)
    assert await fetchval(database_url, "SELECT count(*) FROM tasks") == 20
    created = await fetchval(
        database_url, "SELECT count(*) FROM task_events WHERE from_status IS NULL"
    )
    assert created == 20
    assert (await sandbox.stats())["webhooks"]["duplicated"] > 0


async def test_two_edits_of_one_page_within_a_minute_are_both_seen(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    await start_service(subscribed=True)
    (page, *_) = await page_ids(sandbox)

    async def status_is(wanted: str) -> bool:
        found = await fetchval(
            database_url, "SELECT status FROM tasks WHERE notion_page_id = $1", page
        )
        return bool(found == wanted)

    await sandbox.edit([page], QUEUED)
    await until(lambda: status_is("queued"), within_s=5)
    await sandbox.edit([page], {"Status": {"status": {"name": "Draft"}}})
    await until(lambda: status_is("draft"), within_s=5)
    await sandbox.edit([page], QUEUED)
    await until(lambda: status_is("queued"), within_s=5)
    conn_moves = await fetchval(
        database_url,
        "SELECT string_agg(e.to_status, ',' ORDER BY e.id) FROM task_events e"
        " JOIN tasks t ON t.id = e.task_id WHERE t.notion_page_id = $1",
        page,
    )
    assert conn_moves == "queued,draft,queued"


async def test_an_invalid_entry_says_why_on_its_own_page(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    await start_service(subscribed=True)
    good, bad, *_ = await page_ids(sandbox)
    await sandbox.edit(
        [bad], {"Topic": {"rich_text": []}, "Channel": {"select": {"name": "cooking"}}}
    )
    await sandbox.edit([good, bad], QUEUED)

    async def flagged() -> bool:
        return status_of(await sandbox_page(sandbox, bad)) == "Invalid Input"

    await until(flagged, within_s=10)
    shown = text_of(await sandbox_page(sandbox, bad), "Error Log")
    assert "Topic is empty" in shown
    assert "Channel 'cooking' is not in the channels file" in shown
    assert status_of(await sandbox_page(sandbox, good)) == "Queued"
    assert await fetchval(
        database_url, "SELECT status FROM tasks WHERE notion_page_id=$1", bad
    ) == ("invalid")


async def test_a_change_the_creator_made_after_our_last_read_wins(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    await start_service(subscribed=True)
    (page, *_) = await page_ids(sandbox)
    await sandbox.edit([page], QUEUED)
    await until(lambda: _all_in(database_url, [page]), within_s=5)
    await sandbox.set_faults(webhook_drop_rate=1.0)
    await sandbox.edit([page], {"Status": {"status": {"name": "Cancelled"}}})
    await worker_moves(database_url, page, "generating_assets")

    async def settled() -> bool:
        status = await fetchval(
            database_url, "SELECT status FROM tasks WHERE notion_page_id=$1", page
        )
        pending = await fetchval(database_url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        return bool(status == "cancelled" and pending == 0)

    await until(settled, within_s=10)
    assert status_of(await sandbox_page(sandbox, page)) == "Cancelled"


async def _status(database_url: str, page: str) -> str | None:
    found = await fetchval(database_url, "SELECT status FROM tasks WHERE notion_page_id=$1", page)
    return str(found) if found is not None else None


async def test_push_back_writes_the_latest_state_only(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    service = await start_service(subscribed=True)
    (page, *_) = await page_ids(sandbox)
    await sandbox.edit([page], QUEUED)
    await until(lambda: _all_in(database_url, [page]), within_s=5)
    before = requests(service)
    for status in ("claimed", "generating_assets", "assets_ready"):
        await worker_moves(database_url, page, status)

    async def shows_assets_ready() -> bool:
        return status_of(await sandbox_page(sandbox, page)) == "Assets Ready"

    await until(shows_assets_ready, within_s=10)
    await until(lambda: _quiet(service), within_s=5)
    patches = spent(service, before).get("PATCH /v1/pages/{id}", 0)
    assert 1 <= patches <= 2, "three changes coalesce into at most two writes"


@pytest.mark.parametrize("status_type", ["select"])
async def test_a_select_typed_status_works_too(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str, status_type: str
) -> None:
    await sandbox.reset(status_type=status_type, videos=5)
    await start_service(subscribed=True)
    pages = await page_ids(sandbox)
    await sandbox.edit(pages, {"Status": {"select": {"name": "Queued"}}})
    await until(lambda: _all_in(database_url, pages), within_s=10)
    await worker_moves(database_url, pages[0], "claimed")

    async def shows_processing() -> bool:
        return status_of(await sandbox_page(sandbox, pages[0])) == "Processing"

    await until(shows_processing, within_s=10)
