"""PATCH /v1/data_sources/{id}: properties and options can be added, status options not renamed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reelqueue.sandbox import SandboxAdmin


async def _patch(
    raw: httpx.AsyncClient, sandbox: SandboxAdmin, body: dict[str, Any]
) -> httpx.Response:
    return await raw.patch(f"/v1/data_sources/{sandbox.data_source_id}", json=body)


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


async def test_adding_status_and_select_options(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    answer = await _patch(
        raw,
        fast_sandbox,
        {
            "properties": {
                "Status": {"status": {"options": [{"name": "On Hold", "color": "pink"}]}},
                "Channel": {"select": {"options": [{"name": "nature"}]}},
            }
        },
    )
    assert answer.status_code == 200, answer.text
    status = answer.json()["properties"]["Status"]["status"]
    held = next(o for o in status["options"] if o["name"] == "On Hold")
    assert held["color"] == "pink"
    assert held["id"] in status["groups"][0]["option_ids"]
    channels = [o["name"] for o in answer.json()["properties"]["Channel"]["select"]["options"]]
    assert channels == ["science", "history", "nature"]
    page = (await fast_sandbox.pages())[0]
    edited = await raw.patch(
        f"/v1/pages/{page['id']}", json={"properties": {"Status": {"status": {"name": "On Hold"}}}}
    )
    assert edited.status_code == 200


@pytest.mark.parametrize(
    "properties",
    [
        pytest.param(
            {"Status": {"status": {"groups": [{"name": "Done", "option_ids": []}]}}}, id="regroup"
        ),
        pytest.param({"Title": None}, id="remove the title"),
        pytest.param({"Stage": {"status": {}}}, id="create a status property"),
        pytest.param({"Topic": {"number": {}}}, id="change a type"),
        pytest.param({"Channel": {"select": {"options": [{"name": "a,b"}]}}}, id="comma"),
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


async def test_renaming_a_status_option_is_refused(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    source = (await raw.get(f"/v1/data_sources/{fast_sandbox.data_source_id}")).json()
    draft = source["properties"]["Status"]["status"]["options"][0]
    answer = await _patch(
        raw,
        fast_sandbox,
        {"properties": {"Status": {"status": {"options": [{"id": draft["id"], "name": "Idea"}]}}}},
    )
    assert (answer.status_code, answer.json()["code"]) == (400, "validation_error")


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


async def test_renaming_a_select_option_renames_it_on_every_page(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    source = (await raw.get(f"/v1/data_sources/{fast_sandbox.data_source_id}")).json()
    science = source["properties"]["Channel"]["select"]["options"][0]
    body = {
        "properties": {
            "Channel": {"select": {"options": [{"id": science["id"], "name": "physics"}]}}
        }
    }
    assert (await _patch(raw, fast_sandbox, body)).status_code == 200
    channels = {p["properties"]["Channel"]["select"]["name"] for p in await fast_sandbox.pages()}
    assert channels == {"physics", "history"}
