"""Pages moved out of the calendar hold their tasks; moved back or restored, they go on."""

from __future__ import annotations

from typing import Any

from reelqueue.sandbox import SandboxAdmin
from tests.fixtures.sandbox import SANDBOX_DEFAULTS
from tests.fixtures.service import StartService, fetchval, until, worker_moves

QUEUED = {"Status": {"status": {"name": "Queued"}}}
CANCELLED = {"Status": {"status": {"name": "Cancelled"}}}


async def task_value(database_url: str, page: str, column: str) -> Any:
    return await fetchval(
        database_url, f"SELECT {column} FROM tasks WHERE notion_page_id = $1", page
    )


async def history_count(database_url: str, page: str, pattern: str) -> int:
    found = await fetchval(
        database_url,
        "SELECT count(*) FROM task_events e JOIN tasks t ON t.id = e.task_id"
        " WHERE t.notion_page_id = $1 AND e.reason LIKE $2",
        page,
        pattern,
    )
    return int(found)


async def page_status(sandbox: SandboxAdmin, page: str) -> str | None:
    for shown in await sandbox.pages():
        if shown["id"] == page:
            value = shown["properties"].get("Status", {}).get("status")
            return value["name"] if value else None
    return None


async def queued_task(database_url: str, page: str, within_s: float) -> None:
    """Wait until the page's task exists and is Queued."""

    async def created() -> bool:
        return bool(await task_value(database_url, page, "status") == "queued")

    await until(created, within_s=within_s)


async def moved_out(sandbox: SandboxAdmin, database_url: str, page: str, within_s: float) -> None:
    """Move the page out of the calendar and wait until its task is held."""
    await sandbox.move_page(page, sandbox.parent_page_id)

    async def held() -> bool:
        return bool(await task_value(database_url, page, "page_missing") == "moved")

    await until(held, within_s=within_s)


async def test_a_page_moved_out_holds_its_task_and_moved_back_it_goes_on(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    await start_service(subscribed=True)
    page = (await sandbox.pages())[0]["id"]
    await sandbox.edit([page], QUEUED)

    await queued_task(database_url, page, within_s=5)
    await moved_out(sandbox, database_url, page, within_s=5)
    assert await task_value(database_url, page, "status") == "queued", "held, not cancelled"
    assert await task_value(database_url, page, "page_missing = 'moved'"), "nothing new starts"
    assert await history_count(database_url, page, "held: the page was moved out%") == 1

    # A step that was running finishes while the page is out; the page cannot show it yet.
    await worker_moves(database_url, page, "claimed")
    await sandbox.move_page(page, None)

    async def shows_processing() -> bool:
        return await page_status(sandbox, page) == "Processing"

    await until(shows_processing, within_s=10)
    assert await task_value(database_url, page, "page_missing") is None
    assert await task_value(database_url, page, "run_after <= now()")
    assert await history_count(database_url, page, "the page is back in the calendar%") == 1

    # Back in the calendar, the creator's edits act as usual.
    await sandbox.edit([page], CANCELLED)

    async def cancelled() -> bool:
        return bool(await task_value(database_url, page, "status") == "cancelled")

    await until(cancelled, within_s=5)


async def test_without_webhooks_the_reconcile_finds_a_page_moved_out_and_back(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    await sandbox.reset(**(SANDBOX_DEFAULTS | {"rps": 1000, "burst": 1000, "queued": 1}))
    page = (await sandbox.pages())[0]["id"]
    await start_service(reconcile_interval_s=0.3)

    await queued_task(database_url, page, within_s=10)
    await moved_out(sandbox, database_url, page, within_s=10)
    assert await task_value(database_url, page, "status") == "queued"
    assert await history_count(database_url, page, "held: the page was moved out%") == 1

    await sandbox.move_page(page, None)

    async def back() -> bool:
        return bool(await task_value(database_url, page, "page_missing") is None)

    await until(back, within_s=10)
    assert await task_value(database_url, page, "status") == "queued"
    assert await task_value(database_url, page, "run_after <= now()")


async def test_a_page_restored_from_the_trash_is_taken_in_again(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    await start_service(subscribed=True)
    page = (await sandbox.pages())[0]["id"]
    await sandbox.edit([page], QUEUED)

    await queued_task(database_url, page, within_s=5)
    await sandbox.delete_page(page)

    async def marked() -> bool:
        return bool(await task_value(database_url, page, "page_missing") == "deleted")

    await until(marked, within_s=5)
    assert await task_value(database_url, page, "status") == "cancelled"
    await sandbox.restore_page(page)

    async def requeued() -> bool:
        return bool(await task_value(database_url, page, "status") == "queued")

    # The restored page still says Queued: that is read as the creator's wish again.
    await until(requeued, within_s=10)
    assert await task_value(database_url, page, "page_missing") is None
    assert await history_count(database_url, page, "the page was restored from the trash%") == 1


async def test_a_held_page_deleted_out_of_the_calendar_cancels_its_task(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    await start_service(subscribed=True)
    page = (await sandbox.pages())[0]["id"]
    await sandbox.edit([page], QUEUED)

    await queued_task(database_url, page, within_s=5)
    await moved_out(sandbox, database_url, page, within_s=5)
    # Deleting the page says more than moving it did: the video is stopped.
    await sandbox.delete_page(page)

    async def deleted() -> bool:
        return bool(await task_value(database_url, page, "page_missing") == "deleted")

    await until(deleted, within_s=5)
    assert await task_value(database_url, page, "status") == "cancelled"
    assert await task_value(database_url, page, "run_after <= now()")
