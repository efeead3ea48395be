"""The Notion endpoints the sandbox serves under /v1 (API version 2025-09-03)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from reelqueue.sandbox.bodies import read_json_object
from reelqueue.sandbox.datasource import update_data_source
from reelqueue.sandbox.errors import shape_error, validation_error
from reelqueue.sandbox.gate import notion_route
from reelqueue.sandbox.ids import normalize_id
from reelqueue.sandbox.query import run_query
from reelqueue.sandbox.render import render_bot, render_data_source, render_database, render_page
from reelqueue.sandbox.state import SandboxState
from reelqueue.sandbox.timestamps import utc_now


def path_id(request: Request, name: str) -> str:
    """The object id in the path, dashed; a 400 when it is not a UUID."""
    raw = str(request.path_params["object_id"])
    object_id = normalize_id(raw)
    if object_id is None:
        raise validation_error(
            f'path failed validation: path.{name} should be a valid uuid, instead was `"{raw}"`.'
        )
    return object_id


def _only_properties(request: Request) -> list[str] | None:
    wanted = request.query_params.getlist("filter_properties") + request.query_params.getlist(
        "filter_properties[]"
    )
    return wanted or None


async def users_me(request: Request, state: SandboxState) -> dict[str, Any]:
    """GET /v1/users/me: the integration's bot user."""
    return render_bot(state.workspace)


async def get_database(request: Request, state: SandboxState) -> dict[str, Any]:
    """GET /v1/databases/{id}: the database and its one data source."""
    database_id = path_id(request, "database_id")
    if database_id != state.workspace.database_id:
        raise state.not_found("database", database_id)
    return render_database(state.calendar, state.workspace)


def _data_source_id(request: Request, state: SandboxState) -> str:
    data_source_id = path_id(request, "data_source_id")
    if data_source_id != state.workspace.data_source_id:
        raise state.not_found("data source", data_source_id)
    return data_source_id


async def get_data_source(request: Request, state: SandboxState) -> dict[str, Any]:
    """GET /v1/data_sources/{id}: the calendar's schema."""
    _data_source_id(request, state)
    return render_data_source(state.calendar, state.workspace)


async def patch_data_source(request: Request, state: SandboxState) -> dict[str, Any]:
    """PATCH /v1/data_sources/{id}: add properties and options (no renaming status options)."""
    _data_source_id(request, state)
    update_data_source(state.calendar, await read_json_object(request))
    return render_data_source(state.calendar, state.workspace)


async def query_data_source(request: Request, state: SandboxState) -> dict[str, Any]:
    """POST /v1/data_sources/{id}/query: filtered, sorted, paginated pages."""
    data_source_id = _data_source_id(request, state)
    body = await read_json_object(request, required=False)
    result = run_query(state.calendar, data_source_id, body, state.cursors, utc_now())
    only = _only_properties(request)
    answer: dict[str, Any] = {
        "object": "list",
        "results": [render_page(p, state.calendar, state.workspace, only) for p in result.pages],
        "next_cursor": result.next_cursor,
        "has_more": result.has_more,
        "type": "page_or_data_source",
        "page_or_data_source": {},
    }
    if result.incomplete:
        answer["request_status"] = {
            "type": "incomplete",
            "incomplete_reason": "query_result_limit_reached",
        }
    return answer


async def get_page(request: Request, state: SandboxState) -> dict[str, Any]:
    """GET /v1/pages/{id}: a page, trashed ones included (with in_trash true)."""
    page = state.page_or_404(path_id(request, "page_id"))
    return render_page(page, state.calendar, state.workspace, _only_properties(request))


async def patch_page(request: Request, state: SandboxState) -> dict[str, Any]:
    """PATCH /v1/pages/{id}: change only the named properties; answer the full page."""
    page = state.page_or_404(path_id(request, "page_id"))
    state.update_page_from_api(page, await read_json_object(request))
    return render_page(page, state.calendar, state.workspace)


async def create_page(request: Request, state: SandboxState) -> dict[str, Any]:
    """POST /v1/pages under the calendar's data source (or its database)."""
    body = await read_json_object(request)
    parent = body.get("parent")
    if not isinstance(parent, dict):
        raise shape_error("body.parent", "an object", parent)
    workspace = state.workspace
    if "data_source_id" in parent:
        wanted, kind, ours = parent["data_source_id"], "data source", workspace.data_source_id
    elif "database_id" in parent:
        wanted, kind, ours = parent["database_id"], "database", workspace.database_id
    else:
        raise shape_error("body.parent", "an object with data_source_id or database_id", parent)
    if not isinstance(wanted, str) or normalize_id(wanted) != ours:
        raise state.not_found(kind, str(wanted))
    page = state.create_page(body.get("properties"), workspace.bot)
    return render_page(page, state.calendar, workspace)


ROUTES: list[Route] = [
    notion_route("GET", "/v1/users/me", users_me),
    notion_route("GET", "/v1/databases/{object_id}", get_database),
    notion_route("GET", "/v1/data_sources/{object_id}", get_data_source),
    notion_route("PATCH", "/v1/data_sources/{object_id}", patch_data_source),
    notion_route("POST", "/v1/data_sources/{object_id}/query", query_data_source),
    notion_route("GET", "/v1/pages/{object_id}", get_page),
    notion_route("PATCH", "/v1/pages/{object_id}", patch_page),
    notion_route("POST", "/v1/pages", create_page),
]
