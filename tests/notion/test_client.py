"""NotionClient over an in-process transport: requests it builds and the errors it raises."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reelqueue.notion import (
    DataSourceRef,
    NotionClient,
    NotionNotFound,
    NotionUnavailable,
    NotionValidationError,
    Priority,
    explain,
)
from reelqueue.notion.transport import request_priority

TOKEN = "secret_client_unit_test_token"
DS = "0123456789abcdef0123456789abcdef"
DS_DASHED = "01234567-89ab-cdef-0123-456789abcdef"


def client_for(handler: Callable[[httpx.Request], httpx.Response], **options: Any) -> NotionClient:
    options.setdefault("rate_limit", 10_000.0)
    options.setdefault("burst", 10_000)
    return NotionClient(
        TOKEN, base_url="http://notion.test/", transport=httpx.MockTransport(handler), **options
    )


def answer(body: dict[str, Any], status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=body)


async def test_requests_carry_version_auth_and_normalised_ids() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"object": "page", "id": DS_DASHED})

    async with client_for(handle) as client:
        await client.retrieve_page(DS.upper())
    request = seen[0]
    assert str(request.url) == f"http://notion.test/v1/pages/{DS_DASHED}"
    assert request.headers["Notion-Version"] == "2025-09-03"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in repr(client)


async def test_filter_properties_are_repeated_and_encoded_exactly_once() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"object": "list", "results": [], "has_more": False})

    async with client_for(handle) as client:
        await client.query_data_source(DS, filter_properties=["%3FB%3AW", "title"])
    assert seen[0].url.query == b"filter_properties=%3FB%3AW&filter_properties=title"
    assert json.loads(seen[0].content) == {"page_size": 100}


async def test_a_query_page_reports_cursor_and_the_row_limit() -> None:
    body = {
        "object": "list",
        "results": [{"object": "page", "id": "a"}, "junk"],
        "next_cursor": "c2",
        "has_more": True,
        "request_status": {"type": "incomplete", "incomplete_reason": "query_result_limit_reached"},
        "request_id": "rid",
    }
    async with client_for(answer(body)) as client:
        page = await client.query_data_source(DS, filter={"and": []}, sorts=[], start_cursor="c1")
    assert page.results == [{"object": "page", "id": "a"}]
    assert (page.next_cursor, page.has_more, page.incomplete, page.request_id) == (
        "c2",
        True,
        True,
        "rid",
    )


async def test_resolve_data_sources_lists_each_data_source() -> None:
    body = {
        "object": "database",
        "id": DS_DASHED,
        "data_sources": [{"id": DS, "name": "Calendar"}, {"id": "bad"}, {"name": "no id"}],
    }
    async with client_for(answer(body)) as client:
        refs = await client.resolve_data_sources(f"https://www.notion.so/ws/Calendar-{DS}?v=1")
    assert refs == [DataSourceRef(DS_DASHED, DS_DASHED, "Calendar")]


async def test_create_page_names_its_data_source_parent() -> None:
    seen: list[dict[str, Any]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"object": "page"})

    async with client_for(handle) as client:
        await client.create_page(DS, {"Title": {"title": []}})
    assert seen == [
        {
            "parent": {"type": "data_source_id", "data_source_id": DS_DASHED},
            "properties": {"Title": {"title": []}},
        }
    ]


async def test_reads_go_at_ingest_priority_and_page_updates_at_push_priority() -> None:
    seen: list[Priority] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request_priority.get())
        return httpx.Response(200, json={"object": "page"})

    async with client_for(handle) as client:
        await client.retrieve_page(DS)
        await client.update_page(DS, {})
        await client.query_data_source(DS, priority=Priority.PUSH)
        await client.update_page(DS, {}, priority=Priority.INGEST)
    assert seen == [Priority.INGEST, Priority.PUSH, Priority.PUSH, Priority.INGEST]


async def test_an_overload_answered_with_a_notion_body_keeps_code_and_request_id() -> None:
    body = {
        "object": "error",
        "status": 529,
        "code": "service_overload",
        "message": "Notion is experiencing high traffic.",
        "request_id": "rid-529",
    }
    async with client_for(answer(body, 529), max_attempts=2) as client:
        with pytest.raises(NotionUnavailable) as caught:
            await client.me()
        assert client.stats["requests"] == {"GET /v1/users/me": {"529": 2}}
    error = caught.value
    assert (error.status, error.code, error.request_id) == (529, "service_overload", "rid-529")


async def test_a_gateway_page_without_json_still_becomes_a_typed_error() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    async with client_for(handle, max_attempts=1) as client:
        with pytest.raises(NotionUnavailable) as caught:
            await client.me()
    assert (caught.value.status, caught.value.code) == (502, "http_502")


async def test_timeouts_and_connection_errors_become_unavailable_with_status_0() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with client_for(timeout, max_attempts=1, timeout_s=2.5) as client:
        with pytest.raises(NotionUnavailable) as caught:
            await client.me()
    assert (caught.value.status, caught.value.code) == (0, "timeout")
    assert "2.5 s" in caught.value.message
    async with client_for(refused, max_attempts=1) as client:
        with pytest.raises(NotionUnavailable) as caught:
            await client.me()
    assert (caught.value.status, caught.value.code) == (0, "connection_error")
    assert "NOTION_API_URL" in explain(caught.value)
    assert "http://notion.test" in explain(caught.value)


async def test_a_validation_error_is_raised_at_once() -> None:
    body = {"object": "error", "status": 400, "code": "validation_error", "message": "bad"}
    async with client_for(answer(body, 400)) as client:
        with pytest.raises(NotionValidationError):
            await client.update_page(DS, {})
        assert client.stats.total == 1


async def test_an_error_message_never_carries_the_token() -> None:
    body = {"object": "error", "status": 404, "code": "object_not_found", "message": TOKEN}
    async with client_for(answer(body, 404)) as client:
        with pytest.raises(NotionNotFound) as caught:
            await client.retrieve_page(DS)
    assert TOKEN not in str(caught.value)
    assert TOKEN not in explain(caught.value)


async def test_closing_twice_is_fine_and_a_token_is_required() -> None:
    client = client_for(answer({}))
    await client.aclose()
    await client.aclose()
    with pytest.raises(ValueError, match="token"):
        NotionClient("")
