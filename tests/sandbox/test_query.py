"""Data source queries: filters, sorts, cursors, trimmed properties, and the 10,000-row cap."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from reelqueue.sandbox import SandboxAdmin

Query = dict[str, Any]


async def _query(
    raw: httpx.AsyncClient, sandbox: SandboxAdmin, body: Query, **params: Any
) -> httpx.Response:
    return await raw.post(
        f"/v1/data_sources/{sandbox.data_source_id}/query", json=body, params=params
    )


async def _ids(raw: httpx.AsyncClient, sandbox: SandboxAdmin, body: Query) -> list[str]:
    answer = await _query(raw, sandbox, body)
    assert answer.status_code == 200, answer.text
    return [p["id"] for p in answer.json()["results"]]


async def test_timestamps_are_floored_to_the_minute(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    page = (await fast_sandbox.pages())[0]
    updated = (await fast_sandbox.edit([page["id"]], {"Priority": {"select": {"name": "Low"}}}))[0]
    assert updated["last_edited_by"]["id"] == fast_sandbox.person_user_id
    minute = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z$")
    assert minute.match(updated["created_time"])
    assert minute.match(updated["last_edited_time"])
    now = datetime.now(UTC)
    edited = datetime.fromisoformat(updated["last_edited_time"])
    assert timedelta(0) <= now - edited < timedelta(minutes=1, seconds=5)


async def test_a_poll_after_the_exact_moment_misses_an_edit_in_the_same_minute(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    page = (await fast_sandbox.pages())[0]
    await fast_sandbox.edit([page["id"]], {"Priority": {"select": {"name": "Low"}}})
    just_before = (datetime.now(UTC) - timedelta(milliseconds=1)).isoformat()
    exact = {"timestamp": "last_edited_time", "last_edited_time": {"after": just_before}}
    assert page["id"] not in await _ids(raw, fast_sandbox, {"filter": exact})
    minute = datetime.fromisoformat(just_before).replace(second=0, microsecond=0).isoformat()
    floored = {"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": minute}}
    assert page["id"] in await _ids(raw, fast_sandbox, {"filter": floored})


async def test_created_time_filters_and_date_property_filters(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    pages = await fast_sandbox.pages()
    await fast_sandbox.edit([pages[0]["id"]], {"Updated": {"date": {"start": "2026-07-01"}}})
    await fast_sandbox.edit(
        [pages[1]["id"]], {"Updated": {"date": {"start": "2026-07-02T10:00:00+02:00"}}}
    )
    on_day = {"property": "Updated", "date": {"equals": "2026-07-01"}}
    assert await _ids(raw, fast_sandbox, {"filter": on_day}) == [pages[0]["id"]]
    after = {"property": "Updated", "date": {"after": "2026-07-01"}}
    assert await _ids(raw, fast_sandbox, {"filter": after}) == [pages[1]["id"]]
    empty = {"property": "Updated", "date": {"is_empty": True}}
    assert len(await _ids(raw, fast_sandbox, {"filter": empty})) == 18
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    created = {"timestamp": "created_time", "created_time": {"before": tomorrow}}
    assert len(await _ids(raw, fast_sandbox, {"filter": created})) == 20


async def test_rich_text_checkbox_and_number_filters(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    answer = await raw.patch(
        f"/v1/data_sources/{fast_sandbox.data_source_id}",
        json={"properties": {"Done": {"checkbox": {}}, "Views": {"number": {}}}},
    )
    assert answer.status_code == 200, answer.text
    pages = await fast_sandbox.pages()
    await fast_sandbox.edit(
        [pages[2]["id"]],
        {
            "Done": {"checkbox": True},
            "Views": {"number": 42},
            "Error Log": {"rich_text": [{"text": {"content": "Upload failed: quota"}}]},
        },
    )
    checks: list[tuple[Query, int]] = [
        ({"property": "Done", "checkbox": {"equals": True}}, 1),
        ({"property": "Views", "number": {"greater_than": 41}}, 1),
        ({"property": "Views", "number": {"is_empty": True}}, 19),
        ({"property": "Error Log", "rich_text": {"starts_with": "upload"}}, 1),
        ({"property": "Error Log", "rich_text": {"ends_with": "QUOTA"}}, 1),
        ({"property": "Error Log", "rich_text": {"equals": "Upload failed: quota"}}, 1),
        ({"property": "Error Log", "rich_text": {"does_not_contain": "quota"}}, 19),
        ({"property": "Error Log", "rich_text": {"is_not_empty": True}}, 1),
        ({"property": "Priority", "select": {"is_empty": True}}, 0),
        ({"property": "Status", "status": {"does_not_equal": "Draft"}}, 0),
    ]
    for condition, expected in checks:
        assert len(await _ids(raw, fast_sandbox, {"filter": condition})) == expected, condition


async def test_sorts_by_property_and_timestamp(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    by_title = await _query(
        raw, fast_sandbox, {"sorts": [{"property": "Title", "direction": "ascending"}]}
    )
    titles = [
        "".join(t["plain_text"] for t in p["properties"]["Title"]["title"])
        for p in by_title.json()["results"]
    ]
    assert titles == sorted(titles, key=str.casefold)
    descending = await _query(
        raw, fast_sandbox, {"sorts": [{"property": "Title", "direction": "descending"}]}
    )
    assert [p["id"] for p in descending.json()["results"]] == [
        p["id"] for p in reversed(by_title.json()["results"])
    ]
    oldest_first = await _ids(
        raw, fast_sandbox, {"sorts": [{"timestamp": "created_time", "direction": "ascending"}]}
    )
    assert oldest_first == [p["id"] for p in await fast_sandbox.pages()]
    newest_first = await _ids(raw, fast_sandbox, {})
    assert newest_first == list(reversed(oldest_first))


async def test_filter_properties_trims_each_page(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    source = (await raw.get(f"/v1/data_sources/{fast_sandbox.data_source_id}")).json()
    status_id = source["properties"]["Status"]["id"]
    answer = await _query(
        raw, fast_sandbox, {"page_size": 3}, filter_properties=[status_id, "title"]
    )
    for page in answer.json()["results"]:
        assert set(page["properties"]) == {"Status", "Title"}
    page_id = answer.json()["results"][0]["id"]
    single = await raw.get(f"/v1/pages/{page_id}", params={"filter_properties": status_id})
    assert set(single.json()["properties"]) == {"Status"}


async def test_a_cursor_from_another_query_or_made_up_is_rejected(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    first = (await _query(raw, fast_sandbox, {"page_size": 5})).json()
    cursor = first["next_cursor"]
    assert first["has_more"] is True
    other = {"filter": {"property": "Channel", "select": {"equals": "science"}}}
    for body in ({**other, "start_cursor": cursor}, {"start_cursor": "not-a-cursor"}):
        answer = await _query(raw, fast_sandbox, body)
        assert answer.status_code == 400
        assert answer.json()["code"] == "validation_error"


async def test_an_edit_between_pages_neither_repeats_nor_skips_rows(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    first = (await _query(raw, fast_sandbox, {"page_size": 10})).json()
    later = [p["id"] for p in await fast_sandbox.pages()][:5]
    await fast_sandbox.edit(later, {"Priority": {"select": {"name": "High"}}})
    second = (
        await _query(raw, fast_sandbox, {"page_size": 10, "start_cursor": first["next_cursor"]})
    ).json()
    ids = [p["id"] for p in first["results"] + second["results"]]
    assert len(set(ids)) == 20
    assert second["has_more"] is False


async def test_trashed_pages_leave_queries_but_still_answer_get(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    page_id = (await fast_sandbox.pages())[0]["id"]
    trashed = await fast_sandbox.delete_page(page_id)
    assert trashed["in_trash"] is True
    assert page_id not in await _ids(raw, fast_sandbox, {})
    again = await raw.get(f"/v1/pages/{page_id}")
    assert again.status_code == 200
    assert again.json()["in_trash"] is True
    edit = await raw.patch(
        f"/v1/pages/{page_id}", json={"properties": {"Priority": {"select": {"name": "Low"}}}}
    )
    assert edit.status_code == 400
    restored = await raw.patch(f"/v1/pages/{page_id}", json={"in_trash": False})
    assert restored.json()["in_trash"] is False
    assert page_id in await _ids(raw, fast_sandbox, {})


async def test_unshared_pages_are_404_and_leave_queries(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    page_id = (await fast_sandbox.pages())[0]["id"]
    await fast_sandbox.unshare([page_id])
    answer = await raw.get(f"/v1/pages/{page_id}")
    assert answer.status_code == 404
    assert answer.json()["code"] == "object_not_found"
    assert page_id not in await _ids(raw, fast_sandbox, {})


async def test_a_query_stops_at_10000_rows_and_says_so(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await fast_sandbox.reset(videos=10_050, rps=1000, burst=1000)
    seen: set[str] = set()
    body: Query = {"page_size": 100}
    calls = 0
    while True:
        answer = (await _query(raw, fast_sandbox, body)).json()
        calls += 1
        assert answer["request_status"] == {
            "type": "incomplete",
            "incomplete_reason": "query_result_limit_reached",
        }
        seen |= {p["id"] for p in answer["results"]}
        if not answer["has_more"]:
            assert answer["next_cursor"] is None
            break
        body["start_cursor"] = answer["next_cursor"]
    assert calls == 100
    assert len(seen) == 10_000


async def test_a_query_under_the_cap_has_no_request_status(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    answer = (await _query(raw, fast_sandbox, {})).json()
    assert "request_status" not in answer


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"page_size": 0}, id="page_size 0"),
        pytest.param({"page_size": "10"}, id="page_size text"),
        pytest.param({"filter": {"property": "Nope", "select": {"equals": "x"}}}, id="property"),
        pytest.param({"filter": {"property": "Title", "title": {"equals": 3}}}, id="operand"),
        pytest.param({"filter": {"property": "Title", "title": {"near": "x"}}}, id="operator"),
        pytest.param({"filter": {"and": {"property": "Title"}}}, id="and not a list"),
        pytest.param({"filter": {"timestamp": "edited", "edited": {}}}, id="timestamp"),
        pytest.param({"sorts": [{"property": "Title", "direction": "up"}]}, id="direction"),
        pytest.param({"sorts": [{"property": "Nope"}]}, id="sort property"),
    ],
)
async def test_bad_queries_are_validation_errors(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient, body: Query
) -> None:
    answer = await _query(raw, fast_sandbox, body)
    assert answer.status_code == 400
    assert answer.json()["code"] == "validation_error"


async def test_bad_json_and_unknown_routes(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    answer = await raw.post(
        f"/v1/data_sources/{fast_sandbox.data_source_id}/query",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert (answer.status_code, answer.json()["code"]) == (400, "invalid_json")
    for method, path in (("GET", "/v1/nothing"), ("DELETE", "/v1/users/me")):
        answer = await raw.request(method, path)
        assert (answer.status_code, answer.json()["code"]) == (400, "invalid_request_url")
    answer = await raw.get("/v1/pages/not-a-uuid")
    assert (answer.status_code, answer.json()["code"]) == (400, "validation_error")


async def test_filter_properties_takes_property_ids_not_names(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    source = (await raw.get(f"/v1/data_sources/{fast_sandbox.data_source_id}")).json()
    by_name = await _query(raw, fast_sandbox, {"page_size": 2}, filter_properties=["Status"])
    assert by_name.status_code == 200
    assert all("Status" not in page["properties"] for page in by_name.json()["results"])
    raw_id = source["properties"]["Status"]["id"]
    by_id = await _query(raw, fast_sandbox, {"page_size": 2}, filter_properties=[raw_id])
    assert all(set(page["properties"]) == {"Status"} for page in by_id.json()["results"])


async def test_trashed_pages_are_returned_only_when_the_query_asks_for_them(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    pages = await fast_sandbox.pages()
    trashed = {pages[0]["id"], pages[1]["id"]}
    for page_id in trashed:
        await fast_sandbox.delete_page(page_id)
    everything = {p["id"] for p in pages}
    assert set(await _ids(raw, fast_sandbox, {})) == everything - trashed
    assert set(await _ids(raw, fast_sandbox, {"in_trash": False})) == everything - trashed
    assert set(await _ids(raw, fast_sandbox, {"in_trash": True})) == trashed
    assert set(await _ids(raw, fast_sandbox, {"archived": True})) == trashed
    newer = await raw.post(
        f"/v1/data_sources/{fast_sandbox.data_source_id}/query",
        json={"archived": True},
        headers={"Notion-Version": "2026-03-11"},
    )
    assert (newer.status_code, newer.json()["code"]) == (400, "validation_error")
    wrong = await _query(raw, fast_sandbox, {"in_trash": "yes"})
    assert (wrong.status_code, wrong.json()["code"]) == (400, "validation_error")


async def test_under_2026_12_01_a_query_lists_only_titles_unless_asked_for_more(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    source = (await raw.get(f"/v1/data_sources/{fast_sandbox.data_source_id}")).json()
    status_id = source["properties"]["Status"]["id"]
    newest = {"Notion-Version": "2026-12-01"}
    url = f"/v1/data_sources/{fast_sandbox.data_source_id}/query"

    bare = await raw.post(url, json={}, headers=newest)
    assert bare.status_code == 200, bare.text
    assert all(list(p["properties"]) == ["Title"] for p in bare.json()["results"])

    asked = await raw.post(
        url, json={}, headers=newest, params={"filter_properties": ["title", status_id]}
    )
    assert all(set(p["properties"]) == {"Title", "Status"} for p in asked.json()["results"])

    older = await raw.post(url, json={})
    assert all("Status" in p["properties"] for p in older.json()["results"])
