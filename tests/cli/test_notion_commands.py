"""`reelqueue notion check / setup / create-calendar`, run as a person would, on the sandbox."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from reelqueue.config import Channels, Settings
from reelqueue.errors import UserError
from reelqueue.notion import NotionClient
from reelqueue.sandbox import SandboxAdmin
from reelqueue.service import check_notion, create_calendar, setup_notion
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
CHANNELS = Channels.model_validate({"channels": [{"id": "science", "name": "S"}]})
BOTH = Channels.model_validate(
    {"channels": [{"id": "science", "name": "S"}, {"id": "history", "name": "H"}]}
)


def settings_for(sandbox: SandboxAdmin, **overrides: Any) -> Settings:
    """Settings of an in-process call pointing at the sandbox and its calendar."""
    values: dict[str, Any] = {
        "notion_token": SecretStr(sandbox.token),
        "notion_api_url": sandbox.base_url,
        "notion_database_ids": [sandbox.database_id],
    }
    return Settings(**(values | overrides))


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
        ({"notion_token": SecretStr("secret_wrong")}, "Notion rejected NOTION_TOKEN (401"),
        ({"notion_database_ids": ["0000000000004000800000000000dead"]}, "Connections"),
        ({"notion_database_ids": ["not-an-id"]}, "not a Notion id"),
        ({"notion_token": None}, "NOTION_TOKEN is not set"),
    ],
)
async def test_check_explains_the_common_mistakes(
    sandbox: SandboxAdmin, override: dict[str, Any], expected: str
) -> None:
    await board(sandbox)
    with pytest.raises(UserError) as caught:
        await check_notion(settings_for(sandbox, **override), CHANNELS)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
    assert "secret_wrong" not in str(caught.value)


async def test_a_clashing_label_set_stops_the_command_with_one_line(
    sandbox: SandboxAdmin, tmp_path: Path
) -> None:
    await board(sandbox)
    clash = json.dumps({"generating_video": "Video Ready"})
    result = reelqueue(
        "notion", "check", env=notion_env(tmp_path, sandbox, REELQUEUE_STATUS_LABELS=clash)
    )
    assert result.returncode == 2
    assert "'Video Ready' (generating_video, video_ready)" in one_line_error(result.stderr)


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
    check = await check_notion(settings_for(sandbox, status_labels=SHORT_LABELS), BOTH)
    assert not check.complete
    assert "Channel lacks" not in "\n".join(check.lines)
    assert "Status lacks the options Not started, In progress, Done" in check.lines[1]


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
    settings = settings_for(sandbox, status_labels=SHORT_LABELS)
    assert (await check_notion(settings, BOTH)).complete
    again = await setup_notion(settings, BOTH, confirm=lambda question: False)
    assert again.complete
    assert again.lines[-1].endswith("nothing to add")


async def test_create_calendar_makes_a_calendar_that_check_finds_ready(
    sandbox: SandboxAdmin, tmp_path: Path
) -> None:
    await board(sandbox)
    parent = str((await sandbox.info())["parent_page_id"])
    url = f"https://www.notion.so/acme/Videos-{parent.replace('-', '')}"
    env = notion_env(tmp_path, sandbox, REELQUEUE_STATUS_LABELS=SHORT)
    del env["NOTION_DATABASE_IDS"]

    created = reelqueue(
        "notion", "create-calendar", "--parent", url, "--title", "Videos 2027", env=env
    )

    assert created.returncode == 0, created.stderr
    found = re.search(r"^NOTION_DATABASE_IDS=(\S+)$", created.stdout, re.M)
    assert found is not None, created.stdout
    database_id = found.group(1)
    assert database_id != sandbox.database_id
    settings = settings_for(sandbox, status_labels=SHORT_LABELS, notion_database_ids=[database_id])
    check = await check_notion(settings, BOTH)
    assert check.complete, check.lines
    assert check.lines[-1].endswith("(Videos 2027): ready")
    data_source = re.search(r"^data source (\S+)$", created.stdout, re.M)
    assert data_source is not None
    status = await options_of(sandbox, "Status", data_source.group(1))
    assert status[:3] == ["Not started", "Queued", "In progress"]
    assert len(status) == 21


@pytest.mark.parametrize(
    ("parent", "override", "expected"),
    [
        ("not-a-page", {}, "--parent: 'not-a-page' is not a Notion id"),
        ("https://example.com/a-page", {}, "--parent: 'https://example.com/a-page' is not a"),
        ("0000000000004000800000000000beef", {}, "not shared with the integration"),
        (None, {"notion_token": SecretStr("secret_wrong")}, "Notion rejected NOTION_TOKEN"),
        (None, {"notion_token": None}, "NOTION_TOKEN is not set"),
    ],
)
async def test_create_calendar_explains_a_bad_parent_or_token(
    sandbox: SandboxAdmin, parent: str | None, override: dict[str, Any], expected: str
) -> None:
    await board(sandbox)
    page = parent or str((await sandbox.info())["parent_page_id"])
    settings = settings_for(sandbox, notion_database_ids=[], **override)
    with pytest.raises(UserError) as caught:
        await create_calendar(settings, CHANNELS, page, "Videos")
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
    assert "secret_wrong" not in str(caught.value)
    assert sandbox.token not in str(caught.value)


async def test_create_calendar_for_a_page_not_shared_is_one_line_and_exit_2(
    sandbox: SandboxAdmin, tmp_path: Path
) -> None:
    await board(sandbox)
    env = notion_env(tmp_path, sandbox)
    result = reelqueue(
        "notion", "create-calendar", "--parent", "0000000000004000800000000000beef", env=env
    )
    assert result.returncode == 2
    line = one_line_error(result.stderr)
    assert "not shared with the integration" in line
    assert sandbox.token not in line
