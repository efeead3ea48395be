"""The pipeline as the creator sees it in Notion: gates opened there, errors shown there."""

from __future__ import annotations

from pathlib import Path

from reelqueue.config import Channel, Channels
from reelqueue.pipeline import DEMO_URL_PREFIX
from reelqueue.sandbox import SandboxAdmin
from tests.fixtures.sandbox import page_of, shows
from tests.fixtures.service import StartService, fetchval, ready, until
from tests.service import failing_steps

GATED = Channels(channels=(Channel(id="science", name="S"), Channel(id="history", name="H")))
FAILING = Channels(
    channels=(
        Channel(id="science", name="S", step_set="failing",
                auto_approve=("assets", "video", "audio", "final")),
        Channel(id="history", name="H", step_set="failing",
                auto_approve=("assets", "video", "audio", "final")),
    )
)  # fmt: skip


async def test_a_gate_opened_in_notion_lets_the_task_continue(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str, tmp_path: Path
) -> None:
    service = await start_service(
        channels=GATED, workers=2, poll_interval_s=3.0, demo_step_seconds=0.0,
        artifacts_dir=tmp_path,
    )  # fmt: skip
    await ready(service)
    await sandbox.set_faults(webhook_drop_rate=1.0)
    await sandbox.subscribe(f"{service.base_url}/webhooks/notion", verified=True)
    page = (await sandbox.pages())[0]["id"]
    await sandbox.edit([page], {"Status": {"status": {"name": "Queued"}}})
    await until(lambda: shows(sandbox, page, "Assets Ready"), within_s=20)

    await sandbox.edit([page], {"Status": {"status": {"name": "Assets Approved"}}})

    async def continued() -> bool:
        found = await fetchval(
            database_url,
            "SELECT count(*) FROM task_events e JOIN tasks t ON t.id = e.task_id"
            " WHERE t.notion_page_id = $1 AND e.reason = 'claimed for composites'",
            page,
        )
        return bool(found)

    await until(continued, within_s=3.0 + 2.0)
    await until(lambda: shows(sandbox, page, "Video Ready"), within_s=20)


async def test_a_permanent_failure_shows_in_notion_and_a_requeue_resumes_there(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str, tmp_path: Path
) -> None:
    await start_service(
        channels=FAILING, workers=2, demo_step_seconds=0.0, artifacts_dir=tmp_path,
        step_sets={"failing": "tests.service.failing_steps:STEPS"},
        subscribed=True,
    )  # fmt: skip
    page = (await sandbox.pages())[0]["id"]
    await sandbox.edit([page], {"Status": {"status": {"name": "Queued"}}})
    await until(lambda: shows(sandbox, page, "Audio Error"), within_s=20)
    shown = await page_of(sandbox, page)
    error_log = "".join(t["plain_text"] for t in shown["properties"]["Error Log"]["rich_text"])
    assert "audio failed" in error_log
    assert "the voice model rejected the script" in error_log

    await sandbox.edit([page], {"Status": {"status": {"name": "Queued"}}})
    await until(lambda: shows(sandbox, page, "Published"), within_s=30)
    task_id = await fetchval(database_url, "SELECT id FROM tasks WHERE notion_page_id=$1", page)
    runs = {step: n for (tid, step), n in failing_steps.CALLS.items() if tid == task_id}
    assert runs == {
        "assets": 1, "composites": 1, "video": 1, "audio": 2, "sfx": 1, "assembly": 1, "upload": 1,
    }  # fmt: skip
    final = await page_of(sandbox, page)
    assert (final["properties"]["YouTube URL"]["url"] or "").startswith(DEMO_URL_PREFIX)
    cleared = "".join(t["plain_text"] for t in final["properties"]["Error Log"]["rich_text"])
    assert cleared == ""
