"""PATCH /v1/data_sources/{id}: what Notion's API may change in a schema, and what it may not."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from notion_client import APIErrorCode, APIResponseError, AsyncClient

from reelqueue.sandbox import SandboxAdmin


async def _patch(
    raw: httpx.AsyncClient, sandbox: SandboxAdmin, body: dict[str, Any]
) -> httpx.Response:
    return await raw.patch(f"/v1/data_sources/{sandbox.data_source_id}", json=body)


async def _options(notion: AsyncClient, sandbox: SandboxAdmin, name: str) -> list[dict[str, Any]]:
    source = await notion.data_sources.retrieve(data_source_id=sandbox.data_source_id)
    prop = source["properties"][name]
    return list(prop[prop["type"]]["options"])


async def test_adding_a_property_gives_every_page_an_empty_value(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    answer = await _patch(raw, fast_sandbox, {"properties": {"Script": {"rich_text": {}}}})
    assert answer.status_code == 200, answer.text
    prop = answer.json()["properties"]["Script"]
    assert prop["type"] == "rich_text"
    assert prop["id"] not in ("", "title")
    pages = await fast_sandbox.pages()
    assert all(p["properties"]["Script"]["rich_text"] == [] for p in pages)


@pytest.mark.parametrize(
    "properties",
    [
        pytest.param({"Status": {"status": {"options": [{"name": "On Hold"}]}}}, id="add option"),
        pytest.param(
            {"Status": {"status": {"groups": [{"name": "Done", "option_ids": []}]}}}, id="regroup"
        ),
        pytest.param({"Status": {"name": "Stage"}}, id="rename the property"),
        pytest.param({"Stage": {"status": {}}}, id="create a status property"),
        pytest.param({"Stage": {"type": "status", "status": {"options": []}}}, id="create typed"),
    ],
)
async def test_a_status_property_is_read_only_through_the_api(
    fast_sandbox: SandboxAdmin, notion: AsyncClient, properties: dict[str, Any]
) -> None:
    before = await notion.data_sources.retrieve(data_source_id=fast_sandbox.data_source_id)
    with pytest.raises(APIResponseError) as refused:
        await notion.data_sources.update(
            data_source_id=fast_sandbox.data_source_id, properties=properties
        )
    assert refused.value.status == 400
    assert refused.value.code == APIErrorCode.ValidationError
    after = await notion.data_sources.retrieve(data_source_id=fast_sandbox.data_source_id)
    assert after["properties"] == before["properties"]


async def test_renaming_a_status_option_is_refused(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    draft = (await _options(notion, fast_sandbox, "Status"))[0]
    with pytest.raises(APIResponseError) as refused:
        await notion.data_sources.update(
            data_source_id=fast_sandbox.data_source_id,
            properties={"Status": {"status": {"options": [{"id": draft["id"], "name": "Idea"}]}}},
        )
    assert refused.value.code == APIErrorCode.ValidationError
    assert (await _options(notion, fast_sandbox, "Status"))[0]["name"] == "Draft"


async def test_a_status_property_named_without_changes_is_accepted(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    answer = await notion.data_sources.update(
        data_source_id=fast_sandbox.data_source_id,
        properties={"Status": {"name": "Status", "status": {}}},
    )
    assert answer["properties"]["Status"]["type"] == "status"


@pytest.mark.parametrize(
    "properties",
    [
        pytest.param({"Title": None}, id="remove the title"),
        pytest.param({"Topic": {"number": {}}}, id="change a type"),
        pytest.param({"Channel": {"select": {"options": [{"name": "a,b"}]}}}, id="comma"),
        pytest.param({"Channel": {"select": {"options": [{"id": "nope"}]}}}, id="unknown id"),
        pytest.param(
            {"Channel": {"select": {"options": [{"name": "x"}, {"name": "x"}]}}}, id="twice"
        ),
    ],
)
async def test_what_the_api_cannot_do_is_refused_and_changes_nothing(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient, properties: dict[str, Any]
) -> None:
    before = (await raw.get(f"/v1/data_sources/{fast_sandbox.data_source_id}")).json()
    answer = await _patch(raw, fast_sandbox, {"properties": properties})
    assert (answer.status_code, answer.json()["code"]) == (400, "validation_error")
    after = (await raw.get(f"/v1/data_sources/{fast_sandbox.data_source_id}")).json()
    assert after["properties"] == before["properties"]


async def test_listed_select_options_replace_the_list_and_pages_lose_removed_ones(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    science, history = await _options(notion, fast_sandbox, "Channel")
    answer = await notion.data_sources.update(
        data_source_id=fast_sandbox.data_source_id,
        properties={
            "Channel": {"select": {"options": [{"id": science["id"]}, {"name": "nature"}]}}
        },
    )
    options = answer["properties"]["Channel"]["select"]["options"]
    assert [o["name"] for o in options] == ["science", "nature"]
    assert options[0] == science
    channels = {
        (p["properties"]["Channel"]["select"] or {}).get("name") for p in await fast_sandbox.pages()
    }
    assert channels == {"science", None}
    assert history["name"] == "history"


async def test_an_existing_option_is_kept_when_listed_by_name(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    before = await _options(notion, fast_sandbox, "Priority")
    names = [{"name": o["name"]} for o in before]
    answer = await notion.data_sources.update(
        data_source_id=fast_sandbox.data_source_id,
        properties={"Priority": {"select": {"options": [*names, {"name": "Urgent"}]}}},
    )
    after = answer["properties"]["Priority"]["select"]["options"]
    assert after[: len(before)] == before
    assert after[-1]["name"] == "Urgent"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda o: {"id": o["id"], "name": "physics"}, id="rename by id"),
        pytest.param(lambda o: {"id": o["id"], "color": "pink"}, id="recolor by id"),
        pytest.param(lambda o: {"name": o["name"], "color": "pink"}, id="recolor by name"),
    ],
)
async def test_an_existing_select_option_cannot_be_renamed_or_recolored(
    fast_sandbox: SandboxAdmin, notion: AsyncClient, change: Any
) -> None:
    before = await _options(notion, fast_sandbox, "Channel")
    assert before[0]["color"] != "pink"
    listed = [change(before[0]), {"id": before[1]["id"]}]
    with pytest.raises(APIResponseError) as refused:
        await notion.data_sources.update(
            data_source_id=fast_sandbox.data_source_id,
            properties={"Channel": {"select": {"options": listed}}},
        )
    assert refused.value.code == APIErrorCode.ValidationError
    assert await _options(notion, fast_sandbox, "Channel") == before


async def test_writing_a_page_with_an_unknown_option_creates_it(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    page = (await fast_sandbox.pages())[0]
    written = await notion.pages.update(
        page_id=page["id"], properties={"Channel": {"select": {"name": "nature"}}}
    )
    created = next(
        o for o in await _options(notion, fast_sandbox, "Channel") if o["name"] == "nature"
    )
    assert written["properties"]["Channel"]["select"]["id"] == created["id"]


async def test_renaming_and_removing_properties(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    answer = await _patch(
        raw,
        fast_sandbox,
        {"properties": {"Story Direction": {"name": "Direction"}, "Updated": None}},
    )
    assert answer.status_code == 200, answer.text
    names = set(answer.json()["properties"])
    assert "Direction" in names
    assert not {"Story Direction", "Updated"} & names
    page = (await fast_sandbox.pages())[0]
    assert page["properties"]["Direction"]["rich_text"]
