"""POST /v1/databases: a new database with one data source, as usable as the seeded calendar."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from notion_client import APIErrorCode, APIResponseError, AsyncClient

from reelqueue.sandbox import SandboxAdmin

# DatabaseObjectResponse in the official JS SDK (src/api-endpoints), API 2025-09-03.
DATABASE_KEYS = [
    "object",
    "id",
    "title",
    "description",
    "parent",
    "is_inline",
    "in_trash",
    "archived",
    "is_locked",
    "created_time",
    "last_edited_time",
    "data_sources",
    "icon",
    "cover",
    "url",
    "public_url",
]
PROPERTIES: dict[str, Any] = {
    "Name": {"title": {}},
    "Notes": {"rich_text": {}},
    "Stage": {"select": {"options": [{"name": "Idea", "color": "gray"}, {"name": "Done"}]}},
    "Score": {"number": {}},
    "Link": {"url": {}},
    "Due": {"date": {}},
    "Owner": {"people": {}},
    "Done": {"checkbox": {}},
}


def _text(content: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": content}}]


async def _create(
    notion: AsyncClient, sandbox: SandboxAdmin, properties: dict[str, Any] | None = None
) -> dict[str, Any]:
    database: dict[str, Any] = await notion.databases.create(
        parent={"type": "page_id", "page_id": sandbox.parent_page_id},
        title=_text("Ideas board"),
        initial_data_source={"properties": PROPERTIES if properties is None else properties},
    )
    return database


async def test_the_answer_is_a_database_listing_its_one_data_source(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    database = await _create(notion, fast_sandbox)
    assert [k for k in database if k != "request_id"] == DATABASE_KEYS
    assert database["object"] == "database"
    assert database["parent"] == {"type": "page_id", "page_id": fast_sandbox.parent_page_id}
    assert database["title"][0]["plain_text"] == "Ideas board"
    assert (database["in_trash"], database["archived"], database["is_inline"]) == (
        False,
        False,
        False,
    )
    [source] = database["data_sources"]
    assert set(source) == {"id", "name"}
    assert source["name"] == "Ideas board"
    assert database["id"] not in (fast_sandbox.database_id, source["id"])
    again = await notion.databases.retrieve(database_id=database["id"])
    assert again["data_sources"] == database["data_sources"]


async def test_its_data_source_has_the_requested_schema(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    database = await _create(notion, fast_sandbox)
    source = await notion.data_sources.retrieve(data_source_id=database["data_sources"][0]["id"])
    assert source["parent"] == {"type": "database_id", "database_id": database["id"]}
    assert source["created_by"]["id"] == fast_sandbox.bot_user_id
    types = {name: prop["type"] for name, prop in source["properties"].items()}
    assert types == {name: next(iter(spec)) for name, spec in PROPERTIES.items()}
    assert source["properties"]["Name"]["id"] == "title"
    stage = source["properties"]["Stage"]["select"]["options"]
    assert (stage[0]["name"], stage[0]["color"]) == ("Idea", "gray")
    assert [o["name"] for o in stage] == ["Idea", "Done"]


async def test_pages_can_be_created_read_edited_and_queried_in_it(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    database = await _create(notion, fast_sandbox)
    source_id = database["data_sources"][0]["id"]
    page = await notion.pages.create(
        parent={"type": "data_source_id", "data_source_id": source_id},
        properties={
            "Name": {"title": _text("Time-lapse of a glacier")},
            "Stage": {"select": {"name": "Idea"}},
            "Owner": {"people": [{"id": fast_sandbox.person_user_id}]},
        },
    )
    assert page["parent"] == {
        "type": "data_source_id",
        "data_source_id": source_id,
        "database_id": database["id"],
    }
    assert page["properties"]["Owner"]["people"] == [
        {"object": "user", "id": fast_sandbox.person_user_id}
    ]
    edited = await notion.pages.update(
        page_id=page["id"], properties={"Score": {"number": 7}, "Done": {"checkbox": True}}
    )
    assert (edited["properties"]["Score"]["number"], edited["properties"]["Done"]["checkbox"]) == (
        7,
        True,
    )
    assert (await notion.pages.retrieve(page_id=page["id"]))["properties"]["Score"]["number"] == 7
    found = await notion.data_sources.query(
        data_source_id=source_id, filter={"property": "Stage", "select": {"equals": "Idea"}}
    )
    assert [p["id"] for p in found["results"]] == [page["id"]]
    calendar = await notion.data_sources.query(data_source_id=fast_sandbox.data_source_id)
    assert page["id"] not in {p["id"] for p in calendar["results"]}
    by_database = await notion.pages.create(
        parent={"type": "database_id", "database_id": database["id"]},
        properties={"Name": {"title": _text("Second")}},
    )
    assert by_database["parent"]["data_source_id"] == source_id


async def test_its_schema_can_be_patched(fast_sandbox: SandboxAdmin, notion: AsyncClient) -> None:
    database = await _create(notion, fast_sandbox)
    source_id = database["data_sources"][0]["id"]
    patched = await notion.data_sources.update(
        data_source_id=source_id, properties={"Script": {"rich_text": {}}, "Link": None}
    )
    assert "Script" in patched["properties"]
    assert "Link" not in patched["properties"]
    calendar = await notion.data_sources.retrieve(data_source_id=fast_sandbox.data_source_id)
    assert "Script" not in calendar["properties"]


async def test_without_an_initial_data_source_it_has_a_name_title(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    database = await notion.databases.create(
        parent={"type": "page_id", "page_id": fast_sandbox.parent_page_id}
    )
    source = await notion.data_sources.retrieve(data_source_id=database["data_sources"][0]["id"])
    assert {n: p["type"] for n, p in source["properties"].items()} == {"Name": "title"}


async def test_an_unknown_parent_page_is_notions_404(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    with pytest.raises(APIResponseError) as refused:
        await notion.databases.create(
            parent={"type": "page_id", "page_id": fast_sandbox.data_source_id},
            initial_data_source={"properties": {"Name": {"title": {}}}},
        )
    assert refused.value.status == 404
    assert refused.value.code == APIErrorCode.ObjectNotFound
    assert fast_sandbox.data_source_id in str(refused.value)


@pytest.mark.parametrize(
    "properties",
    [
        pytest.param({"Name": {"title": {}}, "Status": {"status": {}}}, id="status"),
        pytest.param(
            {"Name": {"title": {}}, "Stage": {"type": "status", "status": {"options": []}}},
            id="status with options",
        ),
        pytest.param({"Notes": {"rich_text": {}}}, id="no title"),
        pytest.param({"A": {"title": {}}, "B": {"title": {}}}, id="two titles"),
        pytest.param({"Name": {"title": {}}, "S": {"select": {"options": [{"name": "a,b"}]}}}),
        pytest.param({"Name": {"title": {}}, "Odd": {"mystery": {}}}, id="unknown type"),
    ],
)
async def test_a_schema_the_api_cannot_create_is_refused(
    fast_sandbox: SandboxAdmin, notion: AsyncClient, properties: dict[str, Any]
) -> None:
    with pytest.raises(APIResponseError) as refused:
        await _create(notion, fast_sandbox, properties)
    assert refused.value.status == 400
    assert refused.value.code == APIErrorCode.ValidationError


async def test_unknown_ids_are_notions_404_and_a_reset_forgets_new_databases(
    fast_sandbox: SandboxAdmin, notion: AsyncClient, raw: httpx.AsyncClient
) -> None:
    database = await _create(notion, fast_sandbox)
    source_id = database["data_sources"][0]["id"]
    as_source = await raw.get(f"/v1/data_sources/{database['id']}")
    assert (as_source.status_code, as_source.json()["code"]) == (404, "object_not_found")
    await fast_sandbox.reset(rps=1000, burst=1000)
    for path in (f"/v1/databases/{database['id']}", f"/v1/data_sources/{source_id}"):
        answer = await raw.get(path)
        assert (answer.status_code, answer.json()["code"]) == (404, "object_not_found")


async def test_people_properties_filter_and_sort(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    database = await _create(notion, fast_sandbox)
    source_id = database["data_sources"][0]["id"]
    parent = {"type": "data_source_id", "data_source_id": source_id}
    mine = await notion.pages.create(
        parent=parent, properties={"Owner": {"people": [{"id": fast_sandbox.person_user_id}]}}
    )
    await notion.pages.create(parent=parent, properties={"Name": {"title": _text("nobody's")}})
    owned = await notion.data_sources.query(
        data_source_id=source_id,
        filter={"property": "Owner", "people": {"contains": fast_sandbox.person_user_id}},
        sorts=[{"property": "Owner", "direction": "ascending"}],
    )
    assert [p["id"] for p in owned["results"]] == [mine["id"]]
    with pytest.raises(APIResponseError) as refused:
        await notion.data_sources.query(
            data_source_id=source_id, filter={"property": "Owner", "people": {"contains": "x"}}
        )
    assert refused.value.code == APIErrorCode.ValidationError
