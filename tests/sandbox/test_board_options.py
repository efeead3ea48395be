"""The board's Status options come from whoever sets the sandbox up, as a real board's do."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reelqueue.sandbox import SandboxAdmin, SandboxConfig, SandboxServer
from reelqueue.sandbox.schema import COLORS, parse_status_options
from reelqueue.statuses import StatusTable
from tests.fixtures.sandbox import STATUS_OPTIONS, board_of
from tests.sandbox.conftest import FAST, NOTION_VERSION

GROUPS = {"to_do": "To-do", "in_progress": "In progress", "complete": "Complete"}
# The vocabulary's labels with one step more, after Assets Approved.
_AFTER = STATUS_OPTIONS.index(("Assets Approved", "in_progress")) + 1
WITH_THUMBNAIL = [
    {"name": name, "group": group}
    for name, group in (
        *STATUS_OPTIONS[:_AFTER],
        ("Thumbnail Ready", "in_progress"),
        *STATUS_OPTIONS[_AFTER:],
    )
]


async def status_property(raw: httpx.AsyncClient, sandbox: SandboxAdmin) -> dict[str, Any]:
    answer = await raw.get(f"/v1/data_sources/{sandbox.data_source_id}")
    assert answer.status_code == 200, answer.text
    prop: dict[str, Any] = answer.json()["properties"]["Status"]
    return prop


def grouped(prop: dict[str, Any]) -> dict[str, list[str]]:
    """Each group's name and the names of its options, in board order."""
    names = {o["id"]: o["name"] for o in prop["status"]["options"]}
    return {g["name"]: [names[i] for i in g["option_ids"]] for g in prop["status"]["groups"]}


def expected_groups(options: list[dict[str, str]]) -> dict[str, list[str]]:
    return {name: [o["name"] for o in options if o["group"] == key] for key, name in GROUPS.items()}


async def test_a_status_board_shows_exactly_the_options_given_in_their_groups(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await sandbox.reset(**FAST, status_options=WITH_THUMBNAIL)
    prop = await status_property(raw, sandbox)
    assert prop["type"] == "status"
    assert [o["name"] for o in prop["status"]["options"]] == [o["name"] for o in WITH_THUMBNAIL]
    assert grouped(prop) == expected_groups(WITH_THUMBNAIL)
    assert "Thumbnail Ready" in grouped(prop)["In progress"]
    assert all(o["color"] in COLORS for o in prop["status"]["options"])


async def test_a_select_board_shows_exactly_the_options_given(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await sandbox.reset(**FAST, status_type="select", status_options=WITH_THUMBNAIL)
    prop = await status_property(raw, sandbox)
    assert prop["type"] == "select"
    assert [o["name"] for o in prop["select"]["options"]] == [o["name"] for o in WITH_THUMBNAIL]
    assert "groups" not in prop["select"]


@pytest.mark.parametrize("status_type", ["status", "select"])
async def test_a_page_can_be_set_to_a_new_option(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient, status_type: str
) -> None:
    await sandbox.reset(**FAST, status_type=status_type, status_options=WITH_THUMBNAIL, videos=2)
    page = (await sandbox.pages())[0]["id"]
    answer = await raw.patch(
        f"/v1/pages/{page}",
        json={"properties": {"Status": {status_type: {"name": "Thumbnail Ready"}}}},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["properties"]["Status"][status_type]["name"] == "Thumbnail Ready"
    shown = next(p for p in await sandbox.pages() if p["id"] == page)
    assert shown["properties"]["Status"][status_type]["name"] == "Thumbnail Ready"
    prop = await status_property(raw, sandbox)
    assert [o["name"] for o in prop[status_type]["options"]] == [o["name"] for o in WITH_THUMBNAIL]


async def test_pages_are_seeded_in_draft_and_queued_when_the_board_has_them(
    sandbox: SandboxAdmin,
) -> None:
    await sandbox.reset(**FAST, status_options=WITH_THUMBNAIL, videos=4, queued=1)
    shown = [p["properties"]["Status"]["status"]["name"] for p in await sandbox.pages()]
    assert shown == ["Queued", "Draft", "Draft", "Draft"]


async def test_without_a_draft_option_pages_are_seeded_in_the_first_to_do_option(
    sandbox: SandboxAdmin,
) -> None:
    short = StatusTable({"draft": "Not started", "published": "Done"})
    await sandbox.reset(**FAST, status_options=board_of(short), videos=3)
    shown = [p["properties"]["Status"]["status"]["name"] for p in await sandbox.pages()]
    assert shown == ["Not started"] * 3


BAD_OPTIONS = [
    pytest.param([], "at least one", id="empty"),
    pytest.param("Queued", "must be a list", id="not a list"),
    pytest.param([{"name": "Queued"}], "status_options[0]", id="no group"),
    pytest.param([{"name": "Queued", "group": "to_do", "color": "red"}], "[0]", id="extra key"),
    pytest.param([{"name": " ", "group": "to_do"}], "non-empty", id="blank name"),
    pytest.param([{"name": "A, B", "group": "to_do"}], "without commas", id="comma"),
    pytest.param([{"name": "x" * 101, "group": "to_do"}], "at most 100", id="too long"),
    pytest.param(
        [{"name": "Queued", "group": "to_do"}, {"name": "Queued", "group": "complete"}],
        "listed twice",
        id="duplicate",
    ),
    pytest.param([{"name": "Queued", "group": "To-do"}], "must be one of", id="group by name"),
    pytest.param([{"name": "Queued", "group": "doing"}], "must be one of", id="unknown group"),
    pytest.param([{"name": 3, "group": "to_do"}], "status_options[0]", id="name not text"),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
async def test_invalid_options_are_refused_and_change_nothing(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient, options: Any, message: str
) -> None:
    await sandbox.reset(**FAST, status_options=WITH_THUMBNAIL)
    pages = [p["id"] for p in await sandbox.pages()]
    answer = await raw.post("/_sandbox/reset", json={**FAST, "status_options": options})
    assert answer.status_code == 400
    assert answer.json()["code"] == "validation_error"
    assert message in answer.json()["message"]
    assert [p["id"] for p in await sandbox.pages()] == pages
    prop = await status_property(raw, sandbox)
    assert [o["name"] for o in prop["status"]["options"]] == [o["name"] for o in WITH_THUMBNAIL]


async def test_queued_pages_need_a_queued_option(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    body = {"status_options": [{"name": "Idea", "group": "to_do"}], "videos": 2, "queued": 1}
    answer = await raw.post("/_sandbox/reset", json=body)
    assert answer.status_code == 400
    assert "'Queued'" in answer.json()["message"]


async def test_a_reset_without_options_takes_the_configured_board_again(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await sandbox.reset(**FAST, status_options=[{"name": "Idea", "group": "to_do"}])
    await sandbox.reset(**FAST)
    prop = await status_property(raw, sandbox)
    assert [o["name"] for o in prop["status"]["options"]] == [n for n, _ in STATUS_OPTIONS]


async def test_a_standalone_sandbox_keeps_its_own_default_board() -> None:
    config = SandboxConfig(rate_model="bucket", rps=1000, burst=1000)
    with SandboxServer(config) as server:
        async with SandboxAdmin(server.base_url) as admin:
            await admin.reset(videos=2)
            seeded = {p["properties"]["Status"]["status"]["name"] for p in await admin.pages()}
            headers = {"Authorization": f"Bearer {admin.token}", "Notion-Version": NOTION_VERSION}
            async with httpx.AsyncClient(
                base_url=server.base_url, headers=headers, trust_env=False
            ) as raw:
                groups = grouped(await status_property(raw, admin))
    assert seeded == {"Draft"}
    assert groups["To-do"] == ["Draft", "Queued"]
    assert groups["Complete"][:3] == ["Published", "Asset Error", "Composite Error"]
    assert "Invalid Input" in groups["Complete"]
    assert "Final Review" in groups["In progress"]
    assert sum(len(names) for names in groups.values()) == 31


def test_a_config_with_a_bad_board_is_refused() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        SandboxConfig(status_options=(("Queued", "to_do"), ("Queued", "in_progress")))
    with pytest.raises(ValueError, match="must be one of"):
        SandboxConfig(status_options=(("Queued", "later"),))


names = st.text(min_size=0, max_size=8)
groups = st.sampled_from([*GROUPS, "To-do", "done", ""])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({"name": names, "group": groups}), max_size=6))
def test_a_board_is_taken_exactly_when_every_option_is_one_notion_allows(
    options: list[dict[str, str]],
) -> None:
    allowed = (
        bool(options)
        and len({o["name"] for o in options}) == len(options)
        and all(o["name"].strip() and "," not in o["name"] for o in options)
        and all(o["group"] in GROUPS for o in options)
    )
    try:
        board = parse_status_options(options)
    except ValueError:
        assert not allowed
    else:
        assert allowed
        assert board == tuple((o["name"], o["group"]) for o in options)
