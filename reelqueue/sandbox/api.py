"""The Notion endpoints the sandbox serves under /v1 (API version 2025-09-03).

Objects are answered in the shape of the request's Notion-Version: before 2026-03-11 pages,
databases and data sources also carry the deprecated `archived`, and request bodies may use
it for `in_trash`; from 2026-03-11 on they do not.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from reelqueue.sandbox.bodies import read_json_object
from reelqueue.sandbox.database import update_database
from reelqueue.sandbox.datasource import refuse_in_trash
from reelqueue.sandbox.errors import shape_error, validation_error
from reelqueue.sandbox.gate import notion_route
from reelqueue.sandbox.ids import normalize_id
from reelqueue.sandbox.query import run_query
from reelqueue.sandbox.render import (
    lists_title_only,
    render_bot,
    render_data_source,
    render_database,
    render_page,
    shows_archived,
)
from reelqueue.sandbox.schema_events import update_schema
from reelqueue.sandbox.state import SandboxState
from reelqueue.sandbox.store import Calendar, Page
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


def legacy(request: Request) -> bool:
    """Whether this request's Notion-Version still has `archived` beside `in_trash`."""
    return shows_archived(request.headers.get("notion-version"))


def _only_properties(request: Request) -> list[str] | None:
    wanted = request.query_params.getlist("filter_properties") + request.query_params.getlist(
        "filter_properties[]"
    )
    return wanted or None


def _page(
    request: Request, state: SandboxState, page: Page, only: list[str] | None = None
) -> dict[str, Any]:
    return render_page(
        page, state.calendar_of(page), state.workspace, only, archived=legacy(request)
    )


async def users_me(request: Request, state: SandboxState) -> dict[str, Any]:
    """GET /v1/users/me: the integration's bot user."""
    return render_bot(state.workspace)


async def get_database(request: Request, state: SandboxState) -> dict[str, Any]:
    """GET /v1/databases/{id}: the database and its one data source."""
    calendar = state.database_or_404(path_id(request, "database_id"))
    return render_database(calendar, state.workspace, archived=legacy(request))


async def patch_database(request: Request, state: SandboxState) -> dict[str, Any]:
    """PATCH /v1/databases/{id}: its title, description, icon, cover or is_inline."""
    calendar = state.database_or_404(path_id(request, "database_id"))
    body = await read_json_object(request)
    update_database(calendar, body, archived_alias=legacy(request))
    return render_database(calendar, state.workspace, archived=legacy(request))


async def create_database(request: Request, state: SandboxState) -> dict[str, Any]:
    """POST /v1/databases: a database with one data source under a page shared with us."""
    calendar = state.create_database(await read_json_object(request), state.workspace.bot)
    return render_database(calendar, state.workspace, archived=legacy(request))


def _data_source(request: Request, state: SandboxState) -> Calendar:
    return state.data_source_or_404(path_id(request, "data_source_id"))


async def get_data_source(request: Request, state: SandboxState) -> dict[str, Any]:
    """GET /v1/data_sources/{id}: the data source's schema."""
    calendar = _data_source(request, state)
    return render_data_source(calendar, state.workspace, archived=legacy(request))


async def patch_data_source(request: Request, state: SandboxState) -> dict[str, Any]:
    """PATCH /v1/data_sources/{id}: its schema, title, icon, trash state (see `datasource`).

    Its description cannot be written (a 400): the database's can, by PATCH /v1/databases.
    """
    calendar = _data_source(request, state)
    body = await read_json_object(request)
    update_schema(
        calendar,
        body,
        state.workspace.bot,
        state.webhooks,
        state.database_or_404,
        archived_alias=legacy(request),
    )
    return render_data_source(calendar, state.workspace, archived=legacy(request))


async def query_data_source(request: Request, state: SandboxState) -> dict[str, Any]:
    """POST /v1/data_sources/{id}/query: filtered, sorted, paginated pages."""
    calendar = _data_source(request, state)
    body = await read_json_object(request, required=False)
    refuse_in_trash(calendar, "querying")
    result = run_query(
        calendar,
        calendar.data_source_id,
        body,
        state.cursors,
        utc_now(),
        archived_alias=legacy(request),
    )
    only = _only_properties(request)
    if only is None and lists_title_only(request.headers.get("notion-version")):
        only = [calendar.title_property().id]
    answer: dict[str, Any] = {
        "object": "list",
        "results": [_page(request, state, p, only) for p in result.pages],
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
    return _page(request, state, page, _only_properties(request))


async def patch_page(request: Request, state: SandboxState) -> dict[str, Any]:
    """PATCH /v1/pages/{id}: change only the named properties; answer the full page."""
    page = state.page_or_404(path_id(request, "page_id"))
    body = await read_json_object(request)
    if page.moved_to is None:
        refuse_in_trash(state.calendar_of(page), "editing a page of")
    state.update_page_from_api(page, body, archived_alias=legacy(request))
    return _page(request, state, page)


async def create_page(request: Request, state: SandboxState) -> dict[str, Any]:
    """POST /v1/pages under a data source (or its database, when it has only that one)."""
    body = await read_json_object(request)
    parent = body.get("parent")
    if not isinstance(parent, dict):
        raise shape_error("body.parent", "an object", parent)
    if "data_source_id" in parent:
        wanted, kind = parent["data_source_id"], "data source"
    elif "database_id" in parent:
        wanted, kind = parent["database_id"], "database"
    else:
        raise shape_error("body.parent", "an object with data_source_id or database_id", parent)
    if not isinstance(wanted, str):
        raise state.not_found(kind, str(wanted))
    if kind == "data source":
        calendar = state.data_source_or_404(wanted)
    else:
        calendar = state.database_or_404(wanted)
    refuse_in_trash(calendar, "creating a page in")
    page = state.create_page(body.get("properties"), state.workspace.bot, calendar)
    return _page(request, state, page)


ROUTES: list[Route] = [
    notion_route("GET", "/v1/users/me", users_me),
    notion_route("POST", "/v1/databases", create_database),
    notion_route("GET", "/v1/databases/{object_id}", get_database),
    notion_route("PATCH", "/v1/databases/{object_id}", patch_database),
    notion_route("GET", "/v1/data_sources/{object_id}", get_data_source),
    notion_route("PATCH", "/v1/data_sources/{object_id}", patch_data_source),
    notion_route("POST", "/v1/data_sources/{object_id}/query", query_data_source),
    notion_route("GET", "/v1/pages/{object_id}", get_page),
    notion_route("PATCH", "/v1/pages/{object_id}", patch_page),
    notion_route("POST", "/v1/pages", create_page),
]
