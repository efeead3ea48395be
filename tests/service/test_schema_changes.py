"""Schema changes while the service runs: renames are followed, removals degrade /healthz."""

from __future__ import annotations

from typing import Any

import httpx

from reelqueue.db import create_engine
from reelqueue.queue import TaskChange, apply_changes, load_tasks_by_page
from reelqueue.sandbox import SandboxAdmin
from reelqueue.service import Service
from reelqueue.statuses import StatusTable
from tests.fixtures.sandbox import SANDBOX_DEFAULTS
from tests.fixtures.service import StartService, fetchval, until, worker_moves

QUEUED = {"Status": {"status": {"name": "Queued"}}}


async def health(service: Service) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=service.base_url) as client:
        answer = await client.get("/healthz")
    body: dict[str, Any] = answer.json()
    return body


async def task_status(database_url: str, page: str) -> str | None:
    found = await fetchval(database_url, "SELECT status FROM tasks WHERE notion_page_id = $1", page)
    return str(found) if found is not None else None


async def shown(sandbox: SandboxAdmin, page: str, prop: str) -> Any:
    for item in await sandbox.pages():
        if item["id"] == page:
            value = item["properties"].get(prop)
            return value[value["type"]] if value else None
    return None


async def test_a_renamed_status_property_keeps_working(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    await sandbox.reset(**(SANDBOX_DEFAULTS | {"status_type": "select"}))
    service = await start_service(subscribed=True)
    first, second = [p["id"] for p in await sandbox.pages()][:2]
    await sandbox.edit([first], {"Status": {"select": {"name": "Queued"}}})

    async def first_in() -> bool:
        return await task_status(database_url, first) == "queued"

    await until(first_in, within_s=5)
    await sandbox.change_schema({"Status": {"name": "Stage"}})
    # Reads follow the property by id at once; the new name is learnt from the event.
    await sandbox.edit([second], {"Stage": {"select": {"name": "Queued"}}})

    async def second_in() -> bool:
        return await task_status(database_url, second) == "queued"

    await until(second_in, within_s=5)
    watch = service.schemas
    assert watch is not None

    async def renamed() -> bool:
        return watch.current(sandbox.data_source_id).names.status == "Stage"

    await until(renamed, within_s=5)
    assert watch.current(sandbox.data_source_id).status_type == "select"
    await worker_moves(database_url, first, "claimed")

    async def written() -> bool:
        value = await shown(sandbox, first, "Stage")
        return bool(value and value["name"] == "Processing")

    await until(written, within_s=10)
    assert (await health(service))["status"] == "ok"


async def test_a_removed_channel_degrades_health_with_the_fix_and_loses_nothing(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    service = await start_service(subscribed=True)
    running, waiting = [p["id"] for p in await sandbox.pages()][:2]
    await sandbox.edit([running], QUEUED)

    async def running_in() -> bool:
        return await task_status(database_url, running) == "queued"

    await until(running_in, within_s=5)
    await sandbox.change_schema({"Channel": None})

    async def degraded() -> bool:
        return bool((await health(service))["schema_problems"])

    await until(degraded, within_s=5)
    report = await health(service)
    assert report["status"] == "degraded"
    (problem,) = report["schema_problems"]
    assert f"property Channel was removed from data source {sandbox.data_source_id}" in problem
    assert "add a Channel property of type select with the options" in problem
    assert "reelqueue notion setup" in problem

    # A Queued entry waits instead of being marked invalid for lack of a Channel.
    await sandbox.edit([waiting], QUEUED)

    async def taken_in() -> bool:
        left = await fetchval(
            database_url, "SELECT count(*) FROM webhook_inbox WHERE processed_at IS NULL"
        )
        return bool(left == 0)

    await until(taken_in, within_s=10)
    assert await task_status(database_url, waiting) is None
    # Push-back of the fields that still exist goes on.
    await worker_moves(database_url, running, "claimed")

    async def written() -> bool:
        value = await shown(sandbox, running, "Status")
        return bool(value and value["name"] == "Processing")

    await until(written, within_s=10)

    await sandbox.change_schema(
        {"Channel": {"select": {"options": [{"name": "science"}, {"name": "history"}]}}}
    )

    async def healthy() -> bool:
        return bool((await health(service))["status"] == "ok")

    await until(healthy, within_s=5)

    # The re-added Channel is empty, so the waiting entry now gets the usual answer for that.
    async def told() -> bool:
        value = await shown(sandbox, waiting, "Status")
        return bool(value and value["name"] == "Invalid Input")

    await until(told, within_s=10)
    await sandbox.edit([waiting], {"Channel": {"select": {"name": "science"}}} | QUEUED)

    async def waiting_in() -> bool:
        return await task_status(database_url, waiting) == "queued"

    await until(waiting_in, within_s=10)


async def task_fails(database_url: str, page: str, message: str) -> None:
    """A worker's step fails: the task moves to an error status with an Error Log line."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            task = (await load_tasks_by_page(conn, [page], lock=True))[page]
            change = TaskChange(
                task.id,
                page,
                task.status,
                "asset_error",
                "worker:test",
                message,
                values={"error_log": message},
            )
            await apply_changes(conn, [change], StatusTable())
    finally:
        await engine.dispose()


async def test_without_an_error_log_property_its_writes_wait_for_the_fix(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    service = await start_service(subscribed=True)
    failing, other = [p["id"] for p in await sandbox.pages()][:2]
    await sandbox.edit([failing, other], QUEUED)

    async def both_in() -> bool:
        return bool(await fetchval(database_url, "SELECT count(*) FROM tasks") == 2)

    await until(both_in, within_s=5)
    await sandbox.change_schema({"Error Log": None})

    async def degraded() -> bool:
        return bool((await health(service))["schema_problems"])

    await until(degraded, within_s=5)
    await task_fails(database_url, failing, "assets: the model timed out")
    await worker_moves(database_url, other, "claimed")

    async def other_written() -> bool:
        value = await shown(sandbox, other, "Status")
        return bool(value and value["name"] == "Processing")

    # The page whose change needs the Error Log waits; the other one is written meanwhile.
    await until(other_written, within_s=10)
    assert (await shown(sandbox, failing, "Status"))["name"] == "Queued"
    pending = await fetchval(
        database_url,
        "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND notion_page_id = $1"
        " AND attempts = 0",
        failing,
    )
    assert pending >= 1, "the write waits: it was not even tried"

    await sandbox.change_schema({"Error Log": {"rich_text": {}}})

    async def failing_written() -> bool:
        status = await shown(sandbox, failing, "Status")
        log = await shown(sandbox, failing, "Error Log")
        return bool(
            status
            and status["name"] == "Asset Error"
            and log
            and "the model timed out" in log[0]["plain_text"]
        )

    await until(failing_written, within_s=10)
    assert (await health(service))["status"] == "ok"
