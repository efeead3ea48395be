"""A step added with its own gate runs end to end: Notion board, queue, workers, review.

Only public API: the vocabulary with a `thumbnail` step and gate (tests/fixtures/
thumbnail.py, as statuses.py would hold it), `notion setup` for its labels, and a
Service started with that vocabulary and a step set that has the step.
"""

from __future__ import annotations

from pathlib import Path

from reelqueue.config import Channel, Channels
from reelqueue.pipeline import DEMO_URL_PREFIX
from reelqueue.sandbox import SandboxAdmin
from reelqueue.service import setup_notion
from tests.fixtures.sandbox import SANDBOX_DEFAULTS, page_of, shows
from tests.fixtures.service import StartService, fetchval, service_settings, until
from tests.fixtures.thumbnail import TABLE

# Every gate but the new one opens by itself: the creator reviews thumbnails.
STUDIO = Channels(
    channels=tuple(
        Channel(id=channel, name=channel.title(), step_set="studio",
                auto_approve=tuple(g for g in TABLE.gates if g != "thumbnail"))
        for channel in SANDBOX_DEFAULTS["channels"]
    )
)  # fmt: skip


async def test_a_video_stops_at_the_new_gate_and_the_creator_opens_it_in_notion(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str, tmp_path: Path
) -> None:
    await sandbox.reset(**{**SANDBOX_DEFAULTS, "status_type": "select", "videos": 2})
    report = await setup_notion(
        service_settings(sandbox), STUDIO, lambda _question: True, table=TABLE
    )
    assert report.complete, report.lines

    await start_service(
        channels=STUDIO, workers=2, table=TABLE, subscribed=True,
        step_sets={"studio": "tests.fixtures.thumbnail:STEPS"},
        demo_step_seconds=0.0, artifacts_dir=tmp_path,
    )  # fmt: skip
    page = (await sandbox.pages())[0]["id"]
    await sandbox.edit([page], {"Status": {"select": {"name": "Queued"}}})
    await until(lambda: shows(sandbox, page, "Thumbnail Ready"), within_s=30)
    task_id = await fetchval(database_url, "SELECT id FROM tasks WHERE notion_page_id=$1", page)
    drawn = tmp_path / str(task_id) / "thumbnail.txt"
    assert "after ['assets', 'composites', 'video']" in drawn.read_text()
    assert (
        await fetchval(database_url, "SELECT status FROM tasks WHERE id = $1", task_id)
        == "thumbnail_ready"
    ), "the audio step waits for the review"

    await sandbox.edit([page], {"Status": {"select": {"name": "Thumbnail Approved"}}})
    await until(lambda: shows(sandbox, page, "Published"), within_s=30)
    final = await page_of(sandbox, page)
    assert (final["properties"]["YouTube URL"]["url"] or "").startswith(DEMO_URL_PREFIX)
    claims = await fetchval(
        database_url,
        "SELECT string_agg(reason, ',' ORDER BY id) FROM task_events"
        " WHERE task_id = $1 AND reason LIKE 'claimed for %'",
        task_id,
    )
    assert claims.split(",") == [f"claimed for {step}" for step in TABLE.steps]
