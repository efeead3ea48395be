"""Pages deleted in Notion, or no longer shared: their tasks are marked, once, and stopped."""

from __future__ import annotations

from reelqueue.sandbox import SandboxAdmin
from tests.fixtures.service import StartService, fetchval, until, worker_moves

QUEUED = {"Status": {"status": {"name": "Queued"}}}


async def marked(database_url: str, page: str) -> str | None:
    found = await fetchval(
        database_url, "SELECT page_missing FROM tasks WHERE notion_page_id = $1", page
    )
    return str(found) if found is not None else None


async def test_a_deleted_page_cancels_its_task(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    await start_service(subscribed=True)
    page, other, *_ = [p["id"] for p in await sandbox.pages()]
    await sandbox.edit([page, other], QUEUED)

    async def both_in() -> bool:
        return bool(await fetchval(database_url, "SELECT count(*) FROM tasks") == 2)

    await until(both_in, within_s=5)
    await sandbox.delete_page(page)

    async def is_marked() -> bool:
        return await marked(database_url, page) == "deleted"

    await until(is_marked, within_s=5)
    status = await fetchval(database_url, "SELECT status FROM tasks WHERE notion_page_id=$1", page)
    assert status == "cancelled"
    assert await marked(database_url, other) is None
    reasons = await fetchval(
        database_url,
        "SELECT count(*) FROM task_events e JOIN tasks t ON t.id = e.task_id"
        " WHERE t.notion_page_id = $1 AND e.reason LIKE '%deleted%'",
        page,
    )
    assert reasons == 1


async def test_a_page_no_longer_shared_is_marked_when_we_write_to_it(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    await start_service(subscribed=True)
    page = (await sandbox.pages())[0]["id"]
    await sandbox.edit([page], QUEUED)

    async def queued() -> bool:
        return bool(await fetchval(database_url, "SELECT count(*) FROM tasks") == 1)

    await until(queued, within_s=5)
    await sandbox.unshare([page])
    await worker_moves(database_url, page, "claimed")

    async def is_marked() -> bool:
        return await marked(database_url, page) == "unshared"

    await until(is_marked, within_s=10)
    pending = await fetchval(database_url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    assert pending == 0, "nothing keeps retrying a page we cannot reach"
