"""The sandbox's responses have the keys and value types of responses recorded from Notion.

The recordings live in ../shared/notion-fixtures beside the repository and are not copied
into it; without them these tests skip. They were made with Notion-Version 2026-03-11, so the
comparisons ask for that version; under 2025-09-03 objects also carry `archived`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelqueue.sandbox import SandboxAdmin

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "notion-fixtures"
PROPERTY_TYPES = ("title", "rich_text", "select", "status", "date", "url")
RECORDED = {"Notion-Version": "2026-03-11"}

pytestmark = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"recorded Notion responses not found at {FIXTURES}"
)


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def assert_same_shape(ours: Any, recorded: Any, path: str = "$") -> None:
    """Same keys in every object, same JSON types; null matches anything (nullable fields)."""
    if ours is None or recorded is None:
        return
    assert _kind(ours) == _kind(recorded), f"{path}: {_kind(ours)} != {_kind(recorded)}"
    if isinstance(recorded, dict):
        assert set(ours) == set(recorded), f"{path}: keys {sorted(ours)} != {sorted(recorded)}"
        for key in recorded:
            assert_same_shape(ours[key], recorded[key], f"{path}.{key}")
    elif isinstance(recorded, list) and recorded and ours:
        for item in ours:
            assert_same_shape(item, recorded[0], f"{path}[]")


def _recorded_pages() -> list[dict[str, Any]]:
    pages = list(_load("query_all_property_types.json")["response"]["results"])
    for recording in _load("query_last_edited_time_filter.json"):
        pages += recording["response"]["results"]
    return [*pages, _load("patch_status_blocked.json")["response"]]


def _recorded_property(kind: str) -> dict[str, Any]:
    """A recorded property object of this type, preferring one with a non-empty value."""
    found = [
        prop
        for page in _recorded_pages()
        for prop in page["properties"].values()
        if prop["type"] == kind
    ]
    return next((p for p in found if p[kind] not in (None, [])), found[0])


def _without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


@pytest.fixture
async def filled_page(fast_sandbox: SandboxAdmin) -> dict[str, Any]:
    """A page with every property of the calendar set, so that no value is null."""
    page = (await fast_sandbox.pages())[0]
    updated = await fast_sandbox.edit(
        [page["id"]],
        {
            "YouTube URL": {"url": "https://youtu.be/abc"},
            "Updated": {"date": {"start": "2026-06-27"}},
            "Error Log": {"rich_text": [{"text": {"content": "boom"}}]},
        },
    )
    return updated[0]


async def test_patched_page_has_the_recorded_keys(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient, filled_page: dict[str, Any]
) -> None:
    recorded = _load("patch_status_blocked.json")["response"]
    answer = await raw.patch(
        f"/v1/pages/{filled_page['id']}",
        json={"properties": {"Status": {"type": "status", "status": {"name": "Queued"}}}},
        headers=RECORDED,
    )
    assert answer.status_code == 200
    ours = answer.json()
    assert_same_shape(_without(ours, "properties"), _without(recorded, "properties"))
    assert list(ours) == list(recorded), "keys in Notion's order"


async def test_retrieved_page_has_the_recorded_keys(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient, filled_page: dict[str, Any]
) -> None:
    recorded = _load("patch_status_blocked.json")["response"]
    ours = (await raw.get(f"/v1/pages/{filled_page['id']}", headers=RECORDED)).json()
    assert_same_shape(_without(ours, "properties"), _without(recorded, "properties"))


async def test_under_2025_09_03_pages_also_carry_archived_as_in_trash(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient, filled_page: dict[str, Any]
) -> None:
    recorded = _load("patch_status_blocked.json")["response"]
    path = f"/v1/pages/{filled_page['id']}"
    ours = (await raw.get(path, headers={"Notion-Version": "2025-09-03"})).json()
    assert set(ours) == {*recorded, "archived"}
    assert ours["archived"] is ours["in_trash"] is False
    trashed = await raw.patch(path, json={"archived": True})
    assert (trashed.json()["archived"], trashed.json()["in_trash"]) == (True, True)
    newer = await raw.patch(path, json={"in_trash": False}, headers=RECORDED)
    assert "archived" not in newer.json()
    assert newer.json()["in_trash"] is False


async def test_from_2026_03_11_archived_is_gone_from_requests_and_answers(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient, filled_page: dict[str, Any]
) -> None:
    database = await raw.get(f"/v1/databases/{fast_sandbox.database_id}", headers=RECORDED)
    source = await raw.get(f"/v1/data_sources/{fast_sandbox.data_source_id}", headers=RECORDED)
    assert "archived" not in database.json()
    assert "archived" not in source.json()
    old_database = await raw.get(f"/v1/databases/{fast_sandbox.database_id}")
    old_source = await raw.get(f"/v1/data_sources/{fast_sandbox.data_source_id}")
    assert old_database.json()["archived"] is old_source.json()["archived"] is False
    refused = await raw.patch(
        f"/v1/pages/{filled_page['id']}", json={"archived": True}, headers=RECORDED
    )
    assert (refused.status_code, refused.json()["code"]) == (400, "validation_error")


async def test_query_response_and_its_pages_have_the_recorded_keys(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient, filled_page: dict[str, Any]
) -> None:
    recorded = _load("query_all_property_types.json")["response"]
    answer = await raw.post(
        f"/v1/data_sources/{fast_sandbox.data_source_id}/query",
        json={"page_size": 100},
        headers=RECORDED,
    )
    ours = answer.json()
    assert_same_shape(_without(ours, "results"), _without(recorded, "results"))
    assert list(ours) == list(recorded)
    for page in ours["results"]:
        assert_same_shape(
            _without(page, "properties"), _without(recorded["results"][0], "properties")
        )


@pytest.mark.parametrize("kind", PROPERTY_TYPES)
async def test_property_values_have_the_recorded_shape(
    fast_sandbox: SandboxAdmin, filled_page: dict[str, Any], kind: str
) -> None:
    recorded = _recorded_property(kind)
    ours = [p for p in filled_page["properties"].values() if p["type"] == kind]
    assert ours, f"the calendar has no {kind} property"
    for prop in ours:
        assert prop[kind] not in (None, []), f"{kind} should be filled for this check"
        assert_same_shape(prop, recorded, kind)


async def test_property_ids_are_url_encoded_like_notions(filled_page: dict[str, Any]) -> None:
    ids = [p["id"] for p in filled_page["properties"].values()]
    assert filled_page["properties"]["Title"]["id"] == "title"
    assert any("%" in i for i in ids)
    assert all(" " not in i and len(i) <= 12 for i in ids)


@pytest.mark.parametrize(
    ("method", "path", "headers", "recorded_status"),
    [
        pytest.param("GET", "/v1/invalid", None, 400, id="invalid_request_url"),
        pytest.param("GET", "/v1/users/me", {"Authorization": "Bearer nope"}, 401, id="401"),
        pytest.param("GET", "/v1/pages/00000000-0000-0000-0000-000000000000", None, 404, id="404"),
    ],
)
async def test_error_bodies_have_the_recorded_keys(
    fast_sandbox: SandboxAdmin,
    raw: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str] | None,
    recorded_status: int,
) -> None:
    recordings = _load("error_400_401.json") + _load("error_404.json")
    recorded = next(r["body"] for r in recordings if r["status"] == recorded_status)
    answer = await raw.request(method, path, headers=headers)
    assert answer.status_code == recorded_status
    ours = answer.json()
    assert_same_shape(ours, recorded)
    assert list(ours) == list(recorded)
    assert ours["code"] == recorded["code"]
    if recorded_status != 404:
        assert ours["message"] == recorded["message"]
    else:
        assert ours["message"].endswith('shared with your integration "reelqueue sandbox".')
