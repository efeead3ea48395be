"""`reelqueue run` refuses a second deployment on one calendar and starts once the first stops.

The two deployments meet in the description of the Notion database they both drive.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from reelqueue.notion import NotionClient, plain_text
from reelqueue.sandbox import SandboxAdmin
from reelqueue.service.deployment import parse_markers
from tests.cli.helpers import RunningService, one_line_error, reelqueue, service_env


async def marked_channels(sandbox: SandboxAdmin) -> list[frozenset[str]]:
    """The channels of each deployment line in the calendar database's description."""
    async with NotionClient(sandbox.token, base_url=sandbox.base_url) as notion:
        database = await notion.retrieve_database(sandbox.database_id)
    return [m.channels for m in parse_markers(plain_text(database["description"]))]


async def test_a_second_deployment_is_refused_and_starts_once_the_first_stops(
    sandbox: SandboxAdmin, database_url: str, other_database_url: str, tmp_path: Path
) -> None:
    await sandbox.reset(rps=1000, burst=1000)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = RunningService(service_env(tmp_path / "a", sandbox, database_url))
    second_env = service_env(tmp_path / "b", sandbox, other_database_url)
    try:
        await asyncio.to_thread(first.url)
        assert await marked_channels(sandbox) == [frozenset({"history", "science"})]
        result = await asyncio.to_thread(reelqueue, "run", "--port", "0", env=second_env)
        assert result.returncode == 2
        line = one_line_error(result.stderr)
        assert f"database {sandbox.database_id} is driven by another reelqueue deployment" in line
        assert "both would take channel history, science" in line
        assert sandbox.token not in result.stderr
    finally:
        assert first.stop() == 0
    assert await marked_channels(sandbox) == [], "a clean stop removes its line"
    second = RunningService(second_env)
    try:
        await asyncio.to_thread(second.url)
    finally:
        assert second.stop() == 0
