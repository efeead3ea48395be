"""Descriptions as Notion's API takes them: the database's is written by PATCH /v1/databases,
the data source's is read-only (PATCH /v1/data_sources refuses a `description` key)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from notion_client import APIErrorCode, APIResponseError, AsyncClient

from reelqueue.sandbox import SandboxAdmin
from reelqueue.sandbox.database import description_text
from reelqueue.sandbox.errors import NotionError


def text(content: str) -> dict[str, Any]:
    return {"type": "text", "text": {"content": content}}


def plain(elements: list[dict[str, Any]]) -> list[str]:
    return [e["plain_text"] for e in elements]


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


async def test_the_database_description_is_replaced_and_read_back(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    database_id = fast_sandbox.database_id
    answer = await notion.databases.update(
        database_id=database_id, description=[text("Our calendar.\n"), text("[a second line]")]
    )
    assert plain(answer["description"]) == ["Our calendar.\n", "[a second line]"]
    found = await notion.databases.retrieve(database_id=database_id)
    assert plain(found["description"]) == ["Our calendar.\n", "[a second line]"]
    assert found["title"][0]["plain_text"] == "Content Calendar", "the title is untouched"
    await notion.databases.update(database_id=database_id, description=[text("Only this.")])
    found = await notion.databases.retrieve(database_id=database_id)
    assert plain(found["description"]) == ["Only this."], "the whole description is replaced"
    source = await notion.data_sources.retrieve(data_source_id=fast_sandbox.data_source_id)
    assert source["description"] == [], "the data source's description is its own"
    assert source["properties"]["Status"]["type"] == "status", "the schema is untouched"


async def test_a_new_database_keeps_its_description_on_the_database_only(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    database = await notion.databases.create(
        parent={"type": "page_id", "page_id": fast_sandbox.parent_page_id},
        title=[text("Ideas")],
        description=[text("What we might film."), text(" Someday.")],
    )
    assert plain(database["description"]) == ["What we might film.", " Someday."]
    source_id = database["data_sources"][0]["id"]
    source = await notion.data_sources.retrieve(data_source_id=source_id)
    assert source["description"] == []


async def test_title_icon_cover_and_is_inline_change_too(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    icon = {"type": "emoji", "emoji": "🎬"}
    cover = {"type": "external", "external": {"url": "https://example.com/cover.png"}}
    answer = await notion.databases.update(
        database_id=fast_sandbox.database_id,
        title=[text("Video Calendar")],
        icon=icon,
        cover=cover,
        is_inline=True,
    )
    found = await notion.databases.retrieve(database_id=fast_sandbox.database_id)
    assert without_request_id(found) == without_request_id(answer)
    assert found["title"][0]["plain_text"] == "Video Calendar"
    assert (found["icon"], found["cover"], found["is_inline"]) == (icon, cover, True)


MALFORMED = [
    pytest.param("plain string", id="not rich text"),
    pytest.param([{"type": "text"}], id="an element without text"),
    pytest.param([{"type": "text", "text": {"content": 7}}], id="content not a string"),
    pytest.param([text("x" * 2001)], id="text over 2000 characters"),
    pytest.param([text("x")] * 101, id="over 100 elements"),
]


@pytest.mark.parametrize("description", MALFORMED)
async def test_a_malformed_database_description_is_a_400_and_changes_nothing(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient, description: Any
) -> None:
    path = f"/v1/databases/{fast_sandbox.database_id}"
    assert (await raw.patch(path, json={"description": [text("Kept.")]})).status_code == 200
    answer = await raw.patch(path, json={"title": [text("Not kept")], "description": description})
    assert (answer.status_code, answer.json()["code"]) == (400, "validation_error"), answer.text
    found = (await raw.get(path)).json()
    assert plain(found["description"]) == ["Kept."]
    assert found["title"][0]["plain_text"] == "Content Calendar"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("description", [text("A marker line")], id="description"),
        pytest.param("colour", "blue", id="a made-up key"),
    ],
)
async def test_a_data_source_patch_with_a_key_notion_does_not_take_is_refused(
    fast_sandbox: SandboxAdmin, notion: AsyncClient, raw: httpx.AsyncClient, key: str, value: Any
) -> None:
    path = f"/v1/data_sources/{fast_sandbox.data_source_id}"
    before = (await raw.get(path)).json()
    body = {"title": [text("Renamed")], "properties": {"Notes": {"rich_text": {}}}, key: value}
    answer = await raw.patch(path, json=body)
    assert (answer.status_code, answer.json()["code"]) == (400, "validation_error")
    assert answer.json()["message"].startswith(
        f"body failed validation: body.{key} should be not present, instead was `"
    )
    after = (await raw.get(path)).json()
    assert without_request_id(after) == without_request_id(before), "nothing changed"
    database = await notion.databases.retrieve(database_id=fast_sandbox.database_id)
    assert database["description"] == []


async def test_the_keys_notion_takes_still_change_the_data_source(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    answer = await notion.data_sources.update(
        data_source_id=fast_sandbox.data_source_id, title=[text("Renamed")]
    )
    assert answer["title"][0]["plain_text"] == "Renamed"
    assert answer["description"] == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param({"made_up": 1}, "body.made_up should be not present", id="unknown key"),
        pytest.param(
            {"parent": {"type": "page_id", "page_id": "x"}},
            "the sandbox does not support moving a database",
            id="parent",
        ),
        pytest.param({"in_trash": True}, "does not support trashing", id="in_trash"),
        pytest.param({"archived": True}, "does not support trashing", id="archived (legacy)"),
        pytest.param({"is_locked": True}, "does not support locking", id="is_locked"),
        pytest.param({"is_inline": "yes"}, "body.is_inline should be a boolean", id="is_inline"),
        pytest.param({"icon": "🎬"}, "body.icon should be an object", id="icon"),
        pytest.param({"title": "plain"}, "body.title should be an array", id="title"),
    ],
)
async def test_a_database_patch_the_sandbox_cannot_apply_is_a_400_and_changes_nothing(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient, body: dict[str, Any], says: str
) -> None:
    path = f"/v1/databases/{fast_sandbox.database_id}"
    before = (await raw.get(path)).json()
    answer = await raw.patch(path, json={"description": [text("Not kept.")]} | body)
    assert (answer.status_code, answer.json()["code"]) == (400, "validation_error")
    assert says in answer.json()["message"]
    after = (await raw.get(path)).json()
    assert without_request_id(after) == without_request_id(before)


async def test_archived_is_not_taken_from_2026_03_11_on(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    answer = await raw.patch(
        f"/v1/databases/{fast_sandbox.database_id}",
        json={"archived": False},
        headers={"Notion-Version": "2026-03-11"},
    )
    assert (answer.status_code, answer.json()["code"]) == (400, "validation_error")
    assert "body.archived should be not present" in answer.json()["message"]


async def test_an_unknown_database_is_the_same_404_as_a_get(
    fast_sandbox: SandboxAdmin, notion: AsyncClient, raw: httpx.AsyncClient
) -> None:
    missing = f"/v1/databases/{fast_sandbox.data_source_id}"  # a real id, not a database's
    patched = await raw.patch(missing, json={"description": [text("x")]})
    got = await raw.get(missing)
    assert (patched.status_code, got.status_code) == (404, 404)
    assert without_request_id(patched.json()) == without_request_id(got.json())
    with pytest.raises(APIResponseError) as refused:
        await notion.databases.update(
            database_id=fast_sandbox.data_source_id, description=[text("x")]
        )
    assert refused.value.code == APIErrorCode.ObjectNotFound


async def test_a_database_patch_goes_through_the_gate(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    path = f"/v1/databases/{fast_sandbox.database_id}"
    body = {"description": [text("x")]}
    unauthorized = await raw.patch(path, json=body, headers={"Authorization": "Bearer nope"})
    assert unauthorized.status_code == 401
    await fast_sandbox.set_faults(error_rate=1.0, status_codes=[503])
    assert (await raw.patch(path, json=body)).status_code == 503
    await fast_sandbox.set_faults()
    assert (await raw.get(path)).json()["description"] == []
    stats = await fast_sandbox.stats()
    assert stats["requests"]["PATCH /v1/databases/{id}"] == {"401": 1, "503": 1}


element = st.builds(lambda s, n: text(s + "x" * n), st.text(max_size=5), st.integers(0, 2100))
elements = st.integers(0, 110).flatmap(lambda n: st.lists(element, min_size=n, max_size=n))


@given(raw=elements)
def test_a_description_is_taken_exactly_when_within_notions_limits(
    raw: list[dict[str, Any]],
) -> None:
    # Notion counts text in UTF-16 code units: an emoji is two.
    units = [len(e["text"]["content"].encode("utf-16-le")) // 2 for e in raw]
    if len(raw) <= 100 and all(n <= 2000 for n in units):
        assert plain(description_text(raw)) == [e["text"]["content"] for e in raw]
    else:
        with pytest.raises(NotionError) as refused:
            description_text(raw)
        assert (refused.value.status, refused.value.code) == (400, "validation_error")
