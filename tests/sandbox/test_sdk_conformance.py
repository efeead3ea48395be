"""The official Notion SDK drives the sandbox: every call and every error as against Notion."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from notion_client import APIErrorCode, APIResponseError, AsyncClient
from notion_client.helpers import async_collect_paginated_api

from reelqueue.sandbox import SandboxAdmin


def _title(page: dict[str, Any]) -> str:
    return "".join(t["plain_text"] for t in page["properties"]["Title"]["title"])


async def test_users_me_is_the_integrations_bot(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    me = await notion.users.me()
    assert me["object"] == "user"
    assert me["type"] == "bot"
    assert me["id"] == fast_sandbox.bot_user_id
    assert isinstance(me["bot"], dict)
    assert me["name"]


async def test_database_lists_its_one_data_source(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    database = await notion.databases.retrieve(database_id=fast_sandbox.database_id)
    assert database["object"] == "database"
    assert database["data_sources"] == [
        {"id": fast_sandbox.data_source_id, "name": "Content Calendar"}
    ]


async def test_ids_are_accepted_without_dashes_and_returned_dashed(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    compact = fast_sandbox.database_id.replace("-", "")
    database = await notion.databases.retrieve(database_id=compact)
    assert database["id"] == fast_sandbox.database_id


async def test_data_source_has_the_calendar_schema(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    source = await notion.data_sources.retrieve(data_source_id=fast_sandbox.data_source_id)
    types = {name: prop["type"] for name, prop in source["properties"].items()}
    assert types == {
        "Title": "title",
        "Channel": "select",
        "Topic": "rich_text",
        "Story Direction": "rich_text",
        "Status": "status",
        "Priority": "select",
        "Error Log": "rich_text",
        "YouTube URL": "url",
        "Updated": "date",
    }
    status = source["properties"]["Status"]["status"]
    names = [o["name"] for o in status["options"]]
    assert names[:2] == ["Draft", "Queued"]
    assert {"Assets Ready", "Final Review", "Published", "Invalid Input"} <= set(names)
    assert len(names) == 31
    assert [g["name"] for g in status["groups"]] == ["To-do", "In progress", "Complete"]
    grouped = [i for g in status["groups"] for i in g["option_ids"]]
    assert sorted(grouped) == sorted(o["id"] for o in status["options"])
    channel = [o["name"] for o in source["properties"]["Channel"]["select"]["options"]]
    assert channel == ["science", "history"]


async def test_select_status_type_has_status_as_select(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    await fast_sandbox.reset(status_type="select", rps=1000, burst=1000)
    source = await notion.data_sources.retrieve(data_source_id=fast_sandbox.data_source_id)
    assert source["properties"]["Status"]["type"] == "select"
    page = (await notion.data_sources.query(data_source_id=fast_sandbox.data_source_id))["results"][
        0
    ]
    assert page["properties"]["Status"]["select"]["name"] == "Draft"


async def test_seeded_pages_are_draft_with_channels_in_turn(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    pages = await fast_sandbox.pages()
    assert len(pages) == 20
    assert {p["properties"]["Status"]["status"]["name"] for p in pages} == {"Draft"}
    channels = [p["properties"]["Channel"]["select"]["name"] for p in pages]
    assert channels[:4] == ["science", "history", "science", "history"]
    assert all(_title(p) for p in pages)
    # Priorities are drawn, mostly Normal: on 1,000 pages the share is far from chance.
    await fast_sandbox.reset(videos=1000)
    priorities = [p["properties"]["Priority"]["select"]["name"] for p in await fast_sandbox.pages()]
    assert set(priorities) == {"High", "Normal", "Low"}
    assert 0.6 < priorities.count("Normal") / len(priorities) < 0.8


async def test_query_filters_by_status_select_and_or(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    pages = await fast_sandbox.pages()
    science = [p["id"] for p in pages if p["properties"]["Channel"]["select"]["name"] == "science"]
    await fast_sandbox.edit(science[:3], {"Status": {"status": {"name": "Queued"}}})
    source = fast_sandbox.data_source_id

    queued = await notion.data_sources.query(
        data_source_id=source, filter={"property": "Status", "status": {"equals": "Queued"}}
    )
    assert sorted(p["id"] for p in queued["results"]) == sorted(science[:3])

    history = await notion.data_sources.query(
        data_source_id=source, filter={"property": "Channel", "select": {"equals": "history"}}
    )
    assert len(history["results"]) == 10

    both = await notion.data_sources.query(
        data_source_id=source,
        filter={
            "and": [
                {"property": "Channel", "select": {"equals": "science"}},
                {
                    "or": [
                        {"property": "Status", "status": {"equals": "Queued"}},
                        {"property": "Status", "status": {"equals": "Cancelled"}},
                    ]
                },
            ]
        },
    )
    assert len(both["results"]) == 3


async def test_query_filters_title_contains_and_last_edited_on_or_after(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    pages = await fast_sandbox.pages()
    word = _title(pages[0]).split()[-1].upper()
    found = await notion.data_sources.query(
        data_source_id=fast_sandbox.data_source_id,
        filter={"property": "Title", "title": {"contains": word}},
    )
    assert pages[0]["id"] in [p["id"] for p in found["results"]]
    assert all(word.casefold() in _title(p).casefold() for p in found["results"])

    edited_at = pages[0]["last_edited_time"]
    recent = await notion.data_sources.query(
        data_source_id=fast_sandbox.data_source_id,
        filter={"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": edited_at}},
    )
    assert len(recent["results"]) == 20
    later = await notion.data_sources.query(
        data_source_id=fast_sandbox.data_source_id,
        filter={"timestamp": "last_edited_time", "last_edited_time": {"after": edited_at}},
    )
    assert later["results"] == []


async def test_pagination_returns_every_page_once(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    await fast_sandbox.reset(videos=250, rps=1000, burst=1000)
    seen: list[str] = []
    cursor = None
    calls = 0
    while True:
        kwargs: dict[str, Any] = {"start_cursor": cursor} if cursor else {}
        answer = await notion.data_sources.query(
            data_source_id=fast_sandbox.data_source_id, page_size=100, **kwargs
        )
        calls += 1
        seen += [p["id"] for p in answer["results"]]
        if not answer["has_more"]:
            assert answer["next_cursor"] is None
            break
        cursor = answer["next_cursor"]
        assert isinstance(cursor, str)
    assert calls == 3
    assert len(seen) == len(set(seen)) == 250
    assert set(seen) == {p["id"] for p in await fast_sandbox.pages()}


async def test_sdk_pagination_helper_collects_everything(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    await fast_sandbox.reset(videos=130, rps=1000, burst=1000)
    rows = await async_collect_paginated_api(
        notion.data_sources.query, data_source_id=fast_sandbox.data_source_id, page_size=50
    )
    assert len({r["id"] for r in rows}) == 130


async def test_update_changes_only_named_properties(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    page = (await fast_sandbox.pages())[0]
    updated = await notion.pages.update(
        page_id=page["id"],
        properties={
            "Status": {"status": {"name": "Queued"}},
            "Error Log": {"rich_text": [{"text": {"content": "all good"}}]},
        },
    )
    assert updated["object"] == "page"
    assert updated["properties"]["Status"]["status"]["name"] == "Queued"
    assert updated["properties"]["Error Log"]["rich_text"][0]["plain_text"] == "all good"
    assert updated["properties"]["Title"] == page["properties"]["Title"]
    assert updated["properties"]["Priority"] == page["properties"]["Priority"]
    assert updated["last_edited_by"]["id"] == fast_sandbox.bot_user_id
    again = await notion.pages.retrieve(page_id=page["id"])
    assert again["properties"] == updated["properties"]


async def test_update_accepts_url_date_and_select_by_name(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    page = (await fast_sandbox.pages())[0]
    updated = await notion.pages.update(
        page_id=page["id"],
        properties={
            "YouTube URL": {"url": "https://youtu.be/abc"},
            "Updated": {"date": {"start": "2026-06-27T17:01:00Z"}},
            "Priority": {"select": {"name": "High"}},
        },
    )
    props = updated["properties"]
    assert props["YouTube URL"]["url"] == "https://youtu.be/abc"
    assert props["Updated"]["date"] == {
        "start": "2026-06-27T17:01:00.000+00:00",
        "end": None,
        "time_zone": None,
    }
    assert props["Priority"]["select"]["name"] == "High"


async def test_select_write_with_a_new_name_creates_the_option(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    page = (await fast_sandbox.pages())[0]
    updated = await notion.pages.update(
        page_id=page["id"], properties={"Channel": {"select": {"name": "cooking"}}}
    )
    assert updated["properties"]["Channel"]["select"]["name"] == "cooking"
    source = await notion.data_sources.retrieve(data_source_id=fast_sandbox.data_source_id)
    options = [o["name"] for o in source["properties"]["Channel"]["select"]["options"]]
    assert options == ["science", "history", "cooking"]


async def test_create_page_under_the_data_source_and_the_database(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    created = await notion.pages.create(
        parent={"type": "data_source_id", "data_source_id": fast_sandbox.data_source_id},
        properties={"Title": {"title": [{"text": {"content": "New video"}}]}},
    )
    assert _title(created) == "New video"
    assert created["properties"]["Status"]["status"]["name"] == "Draft"
    assert created["created_by"]["id"] == fast_sandbox.bot_user_id
    assert created["parent"] == {
        "type": "data_source_id",
        "data_source_id": fast_sandbox.data_source_id,
        "database_id": fast_sandbox.database_id,
    }
    via_database = await notion.pages.create(
        parent={"database_id": fast_sandbox.database_id.replace("-", "")},
        properties={"Title": {"title": [{"text": {"content": "Another"}}]}},
    )
    assert via_database["parent"]["data_source_id"] == fast_sandbox.data_source_id
    assert len(await fast_sandbox.pages()) == 22


async def _error(call: Any) -> APIResponseError:
    with pytest.raises(APIResponseError) as caught:
        await call
    error = caught.value
    assert isinstance(error.request_id, str)
    assert error.request_id
    return error


async def test_a_wrong_token_is_401_unauthorized(fast_sandbox: SandboxAdmin) -> None:
    client = AsyncClient(auth="secret_wrong", base_url=fast_sandbox.base_url, retry=False)
    try:
        error = await _error(client.users.me())
    finally:
        await client.aclose()
    assert error.code == APIErrorCode.Unauthorized
    assert error.status == 401
    assert str(error) == "API token is invalid."


async def test_a_missing_token_is_401(fast_sandbox: SandboxAdmin) -> None:
    async with httpx.AsyncClient(base_url=fast_sandbox.base_url, trust_env=False) as client:
        answer = await client.get("/v1/users/me", headers={"Notion-Version": "2025-09-03"})
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthorized"


async def test_a_missing_version_header_is_400_missing_version(
    fast_sandbox: SandboxAdmin,
) -> None:
    async with httpx.AsyncClient(base_url=fast_sandbox.base_url, trust_env=False) as client:
        answer = await client.get(
            "/v1/users/me", headers={"Authorization": f"Bearer {fast_sandbox.token}"}
        )
    assert answer.status_code == 400
    body = answer.json()
    assert body["object"] == "error"
    assert body["code"] == "missing_version"
    assert body["status"] == 400
    assert body["request_id"]


async def test_an_unknown_page_is_404_object_not_found(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    error = await _error(notion.pages.retrieve(page_id=missing))
    assert error.code == APIErrorCode.ObjectNotFound
    assert error.status == 404
    assert "shared with your integration" in str(error)
    assert error.additional_data is not None
    assert "integration_id" in error.additional_data


async def test_unknown_data_source_and_database_are_404(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    missing = "11111111111111111111111111111111"
    for call in (
        notion.data_sources.retrieve(data_source_id=missing),
        notion.data_sources.query(data_source_id=missing),
        notion.databases.retrieve(database_id=missing),
    ):
        error = await _error(call)
        assert (error.status, error.code) == (404, APIErrorCode.ObjectNotFound)


async def test_a_select_filter_on_a_status_property_is_a_validation_error(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    error = await _error(
        notion.data_sources.query(
            data_source_id=fast_sandbox.data_source_id,
            filter={"property": "Status", "select": {"equals": "Queued"}},
        )
    )
    assert (error.status, error.code) == (400, APIErrorCode.ValidationError)
    assert "does not match filter select" in str(error)


async def test_a_status_filter_on_a_select_property_is_a_validation_error(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    await fast_sandbox.reset(status_type="select", rps=1000, burst=1000)
    error = await _error(
        notion.data_sources.query(
            data_source_id=fast_sandbox.data_source_id,
            filter={"property": "Status", "status": {"equals": "Queued"}},
        )
    )
    assert (error.status, error.code) == (400, APIErrorCode.ValidationError)
    assert "does not match filter status" in str(error)


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        pytest.param(
            {"Status": {"status": {"name": "Shipped"}}}, "Shipped", id="unknown status option"
        ),
        pytest.param(
            {"Error Log": {"rich_text": [{"text": {"content": "x" * 2001}}]}},
            "2000",
            id="text over 2000 characters",
        ),
        pytest.param(
            {"Error Log": {"rich_text": [{"text": {"content": "x"}}] * 101}},
            "100",
            id="more than 100 rich text elements",
        ),
        pytest.param(
            {"YouTube URL": {"url": "https://x.io/" + "a" * 2000}}, "2000", id="url too long"
        ),
        pytest.param({"Stage": {"select": {"name": "x"}}}, "Stage", id="unknown property"),
        pytest.param({"Status": {"select": {"name": "Queued"}}}, "status", id="wrong type"),
        pytest.param({"Priority": {"select": "High"}}, "select", id="wrong shape"),
    ],
)
async def test_bad_writes_are_validation_errors_and_change_nothing(
    fast_sandbox: SandboxAdmin, notion: AsyncClient, properties: dict[str, Any], expected: str
) -> None:
    page = (await fast_sandbox.pages())[0]
    error = await _error(notion.pages.update(page_id=page["id"], properties=properties))
    assert (error.status, error.code) == (400, APIErrorCode.ValidationError)
    assert expected in str(error)
    assert (await notion.pages.retrieve(page_id=page["id"]))["properties"] == page["properties"]


async def test_text_of_exactly_2000_characters_is_accepted(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    page = (await fast_sandbox.pages())[0]
    updated = await notion.pages.update(
        page_id=page["id"],
        properties={"Error Log": {"rich_text": [{"text": {"content": "x" * 2000}}] * 100}},
    )
    assert len(updated["properties"]["Error Log"]["rich_text"]) == 100


async def test_page_size_over_100_is_a_validation_error(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    error = await _error(
        notion.data_sources.query(data_source_id=fast_sandbox.data_source_id, page_size=101)
    )
    assert (error.status, error.code) == (400, APIErrorCode.ValidationError)


async def test_over_the_rate_limit_is_429_with_an_integer_retry_after(
    sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    await sandbox.reset(rps=1, burst=2)
    await notion.users.me()
    await notion.users.me()
    error = await _error(notion.users.me())
    assert (error.status, error.code) == (429, APIErrorCode.RateLimited)
    retry_after = error.headers["retry-after"]
    assert retry_after.isdigit()
    assert int(retry_after) >= 1
    stats = await sandbox.stats()
    assert stats["rate_limited"] == 1
    assert stats["requests"]["GET /v1/users/me"] == {"200": 2, "429": 1}


async def test_text_limits_count_utf16_units_like_notion(
    notion: AsyncClient, fast_sandbox: SandboxAdmin
) -> None:
    """1,001 emoji are 2,002 UTF-16 units: over Notion's 2,000 per element."""
    page_id = (await fast_sandbox.pages())[0]["id"]
    with pytest.raises(APIResponseError) as caught:
        await notion.pages.update(
            page_id=page_id,
            properties={"Topic": {"rich_text": [{"text": {"content": "🎬" * 1001}}]}},
        )
    assert caught.value.code == "validation_error"
    await notion.pages.update(
        page_id=page_id,
        properties={"Topic": {"rich_text": [{"text": {"content": "🎬" * 1000}}]}},
    )
