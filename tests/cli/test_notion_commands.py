"""`reelqueue notion check / setup / create-calendar`, run as a person would, on the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reelqueue.notion import NotionClient
from reelqueue.sandbox import SandboxAdmin
from reelqueue.statuses import SHORT_LABELS
from tests.cli.helpers import CHANNELS_YAML, cli_env, one_line_error, reelqueue
from tests.fixtures.sandbox import SANDBOX_DEFAULTS

FAST = {"rps": 1000.0, "burst": 1000}


async def board(sandbox: SandboxAdmin, **options: Any) -> None:
    """Reset the sandbox's calendar with these options, the rate limit out of the way."""
    await sandbox.reset(**(SANDBOX_DEFAULTS | FAST | options))


def notion_env(tmp_path: Path, sandbox: SandboxAdmin, **extra: str) -> dict[str, str]:
    """The environment of the notion commands: the sandbox, its calendar, two channels."""
    channels = tmp_path / "channels.yaml"
    channels.write_text(CHANNELS_YAML)
    return cli_env(
        tmp_path,
        NOTION_TOKEN=sandbox.token,
        NOTION_API_URL=sandbox.base_url,
        NOTION_DATABASE_IDS=sandbox.database_id,
        REELQUEUE_CHANNELS=str(channels),
        **extra,
    )


async def options_of(sandbox: SandboxAdmin, name: str, data_source_id: str) -> list[str]:
    """The option names of a property, as Notion's API shows them."""
    async with NotionClient(sandbox.token, base_url=sandbox.base_url) as notion:
        data_source = await notion.retrieve_data_source(data_source_id)
    prop = data_source["properties"][name]
    return [o["name"] for o in prop[prop["type"]]["options"]]


SHORT = json.dumps(SHORT_LABELS)


async def test_check_reports_a_ready_calendar_and_exits_0(
    sandbox: SandboxAdmin, tmp_path: Path
) -> None:
    await board(sandbox)
    result = reelqueue("notion", "check", env=notion_env(tmp_path, sandbox))
    assert result.returncode == 0, result.stderr
    assert "token ok" in result.stdout
    assert result.stdout.strip().endswith("(Content Calendar): ready")
    assert sandbox.token not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"NOTION_TOKEN": "secret_wrong"}, "Notion rejected NOTION_TOKEN (401 unauthorized)"),
        ({"NOTION_DATABASE_IDS": "0000000000004000800000000000dead"}, "Connections"),
        ({"NOTION_DATABASE_IDS": "not-an-id"}, "not a Notion id"),
        (
            {"REELQUEUE_STATUS_LABELS": json.dumps({"generating_video": "Video Ready"})},
            "'Video Ready' (generating_video, video_ready)",
        ),
    ],
)
async def test_check_explains_the_common_mistakes_in_one_line(
    sandbox: SandboxAdmin, tmp_path: Path, override: dict[str, str], expected: str
) -> None:
    await board(sandbox)
    result = reelqueue("notion", "check", env=notion_env(tmp_path, sandbox) | override)
    assert result.returncode == 2
    line = one_line_error(result.stderr)
    assert expected in line
    assert "secret_wrong" not in line


async def test_check_lists_every_missing_option_and_exits_1(
    sandbox: SandboxAdmin, tmp_path: Path
) -> None:
    await board(sandbox, channels=["science"])
    env = notion_env(tmp_path, sandbox, REELQUEUE_STATUS_LABELS=SHORT)
    result = reelqueue("notion", "check", env=env)
    assert result.returncode == 1, result.stderr
    assert "Status lacks the options Not started, In progress, Done" in result.stdout
    assert "Channel lacks the options history" in result.stdout
    assert "fix: run `reelqueue notion setup`" in result.stdout


async def test_setup_on_a_status_board_adds_what_it_can_and_names_the_rest_by_group(
    sandbox: SandboxAdmin, tmp_path: Path
) -> None:
    await board(sandbox, channels=["science"])
    env = notion_env(tmp_path, sandbox, REELQUEUE_STATUS_LABELS=SHORT)
    before = await options_of(sandbox, "Status", sandbox.data_source_id)

    setup = reelqueue("notion", "setup", "--yes", env=env)

    assert setup.returncode == 1, setup.stderr
    assert "added or extended Channel" in setup.stdout
    lines = setup.stdout.splitlines()
    assert "Status is a status property" in setup.stdout
    assert "  To-do: Not started" in lines
    assert "  In progress: In progress" in lines
    assert "  Complete: Done" in lines
    assert await options_of(sandbox, "Channel", sandbox.data_source_id) == ["science", "history"]
    assert await options_of(sandbox, "Status", sandbox.data_source_id) == before
    check = reelqueue("notion", "check", env=env)
    assert check.returncode == 1
    assert "Channel lacks" not in check.stdout
    assert "Status lacks the options Not started, In progress, Done" in check.stdout


async def test_setup_on_a_select_board_completes_it_after_confirmation(
    sandbox: SandboxAdmin, tmp_path: Path
) -> None:
    await board(sandbox, status_type="select")
    env = notion_env(tmp_path, sandbox, REELQUEUE_STATUS_LABELS=SHORT)
    before = await options_of(sandbox, "Status", sandbox.data_source_id)

    refused = reelqueue("notion", "setup", env=env)
    assert refused.returncode == 2
    assert "--yes" in one_line_error(refused.stderr)

    setup = reelqueue("notion", "setup", "--yes", env=env)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "added or extended Status" in setup.stdout
    after = await options_of(sandbox, "Status", sandbox.data_source_id)
    assert after == [*before, "Not started", "In progress", "Done"]
    assert reelqueue("notion", "check", env=env).returncode == 0
    again = reelqueue("notion", "setup", "--yes", env=env)
    assert again.returncode == 0
    assert again.stdout.strip().endswith("nothing to add")
