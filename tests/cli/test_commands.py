"""The other commands, run as a person would: status, tasks, webhook token, demo."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.sandbox import SandboxAdmin
from reelqueue.statuses import StatusTable
from tests.cli.helpers import cli_env, one_line_error, reelqueue, seed_tasks


async def test_status_and_tasks_report_the_queue(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    await seed_tasks(engine)
    env = cli_env(tmp_path, DATABASE_URL=database_url)

    status = reelqueue("status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    counts = json.loads(status.stdout.strip().splitlines()[-1])
    assert {(c["status"], c["channel"], c["count"]) for c in counts} == {
        ("queued", "science", 2),
        ("queued", "history", 1),
    }

    tasks = reelqueue("tasks", "--json", env=env)
    assert tasks.returncode == 0, tasks.stderr
    rows = json.loads(tasks.stdout.strip().splitlines()[-1])
    assert len(rows) == 3
    assert set(rows[0]) == {
        "id", "notion_page_id", "title", "channel", "status", "priority", "attempts", "updated_at",
    }  # fmt: skip
    assert rows[0]["priority"] == "High"
    assert rows[1]["priority"] == "Normal"

    none = reelqueue("tasks", "--status", "published", "--json", env=env)
    assert json.loads(none.stdout.strip().splitlines()[-1]) == []
    bad = reelqueue("tasks", "--status", "done", env=env)
    assert bad.returncode == 2
    assert "'done' is not a status" in one_line_error(bad.stderr)

    readable = reelqueue("status", env=env)
    assert "science" in readable.stdout


def test_a_bad_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = reelqueue("status", env=cli_env(tmp_path, NOTION_RATE_LIMIT="-1"))
    assert result.returncode == 2
    assert one_line_error(result.stderr).startswith("reelqueue: error: NOTION_RATE_LIMIT:")


def test_a_bad_channels_file_names_its_line(tmp_path: Path) -> None:
    channels = tmp_path / "channels.yaml"
    channels.write_text("channels:\n  - id: science\n    name: S\n    max_concurrent: lots\n")
    env = cli_env(
        tmp_path,
        REELQUEUE_CHANNELS=str(channels),
        NOTION_TOKEN="secret_x",
        NOTION_DATABASE_IDS="3839ce7b60a481c8867af81fd71aa55c",
    )
    result = reelqueue("run", env=env)
    assert result.returncode == 2
    assert f"{channels} line 4: channels.0.max_concurrent" in one_line_error(result.stderr)


async def test_webhook_token_is_printed_once_notion_sent_it(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    env = cli_env(tmp_path, DATABASE_URL=database_url)
    before = reelqueue("webhook", "token", env=env)
    assert before.returncode == 2
    assert "no verification token yet" in one_line_error(before.stderr)
    from reelqueue.ingest.webhook_tokens import receive_handshake

    async with engine.begin() as conn:
        await receive_handshake(conn, "secret_from_notion")
    after = reelqueue("webhook", "token", env=env)
    assert after.returncode == 0
    assert "secret_from_notion" in after.stdout


@pytest.mark.timeout(240)
def test_the_demo_queues_every_video_and_ends_with_json(
    postgres_server_url: str, tmp_path: Path
) -> None:
    env = cli_env(tmp_path, DATABASE_URL=postgres_server_url)
    result = reelqueue("demo", "--videos", "8", "--json", env=env, timeout=200)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["videos"] == 8
    assert summary["queued"] == 8
    assert summary["duplicates"] == 0
    assert summary["rate_limited"] == 0
    assert summary["seconds_to_all_queued"] is not None, "all queued within the demo's wait"
    assert summary["webhooks"]["delivered"] >= 1, "the edit reached reelqueue as webhooks"
    assert summary["published"] == 8
    assert summary["seconds_to_all_published"] > summary["seconds_to_all_queued"]
    assert sum(summary["notion_requests"].values()) >= 1


async def test_the_sandbox_command_serves_a_board_with_the_configured_labels(
    tmp_path: Path,
) -> None:
    env = cli_env(tmp_path, REELQUEUE_STATUS_LABELS='{"queued": "Ready to film"}')
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reelqueue", "sandbox", "--port", "0", "--videos", "1",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        listening = await asyncio.wait_for(process.stdout.readline(), 60)
        admin = SandboxAdmin(listening.decode().split()[-1])
        try:
            await admin.info()
            async with httpx.AsyncClient(base_url=admin.base_url) as http:
                answer = await http.get(
                    f"/v1/data_sources/{admin.data_source_id}",
                    headers={"Authorization": f"Bearer {admin.token}",
                             "Notion-Version": "2025-09-03"},
                )  # fmt: skip
        finally:
            await admin.aclose()
    finally:
        process.terminate()
        await process.wait()
    names = [
        option["name"] for option in answer.json()["properties"]["Status"]["status"]["options"]
    ]
    assert "Ready to film" in names
    assert "Queued" not in names
    assert names == StatusTable({"queued": "Ready to film"}).labels
