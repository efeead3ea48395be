"""The admin API under /_sandbox/: no auth, no rate limit, not counted as Notion requests.

Errors answer in Notion's error shape (`validation_error` 400 for a bad body,
`object_not_found` 404 for an unknown page).

- `GET /_sandbox/info` -> `{"base_url", "token", "database_ids", "data_source_ids",
  "bot_user_id", "person_user_id", "status_type", "parent_page_id"}` (`parent_page_id`: the
  page shared with the integration, the parent POST /v1/databases accepts; the calendar's
  `database_ids`/`data_source_ids` come first, databases made through the API are not listed).
- `POST /_sandbox/reset` `{"videos"?, "channels"?, "status_type"?, "status_options"?,
  "rps"?, "burst"?, "webhook_window_ms"?, "webhook_retry_scale"?, "age_s"?, "queued"?}`: a
  fresh calendar of Draft entries (the first `queued` of them Queued instead, all created and
  last edited `age_s` seconds ago, so a test can start from a quiet calendar). The board's
  Status options are `status_options`, `[{"name", "group"}, ...]` in board order with group
  `to_do`, `in_progress` or `complete` (the sandbox picks the colors; a `select` Status has
  no groups); names must be unique, non-empty and without commas. Entries are seeded in
  the option "Draft", or the first To-do option when there is none; `queued` needs an
  option "Queued". A key left out takes the
  server's configured value (not the previous reset's). Clears faults, stats, cursors and
  subscriptions, and releases hung requests. Database and data source ids stay the same;
  page ids are new (databases made by POST /v1/databases are gone).
  Returns the info object. It also takes the /v1 request limits:
  `"rate_model"?: "window"|"bucket"`, `"budget"?, "window_s"?` (window), `"rps"?,
  "burst"?` (bucket), `"workspace_budget"?` (0: none), `"workspace_window_s"?` and
  `"latency_ms"?: ms | [low, high]`; it drops the tokens issued by `/_sandbox/tokens` and
  lifts a forced workspace limit.
- `POST /_sandbox/edit` `{"page_ids": [...], "properties": {...}, "author"?: "person"|"bot"}`:
  a person (by default) editing several rows at once on the board. Validated like a PATCH
  (all pages and values, before any change); emits the webhooks; returns `{"pages": [...]}`
  once applied.
- `POST /_sandbox/pages` `{"properties": {...}, "author"?}`: creates a page (page.created);
  returns the page.
- `DELETE /_sandbox/pages/{id}` `{"author"?}` (body optional): moves the page to the trash
  (page.deleted). Like Notion, a trashed page still answers GET, with `in_trash: true`, and
  drops out of queries.
- `POST /_sandbox/pages/{id}/restore` `{"author"?}`: takes the page out of the trash
  (page.undeleted); returns the page.
- `POST /_sandbox/pages/{id}/move` `{"parent": {"type": "page_id", "page_id"} |
  {"type": "data_source_id", "data_source_id"}, "author"?}`: moves the page out of its data
  source to a parent page, or back into it (page.moved); see `moves`. Returns the page.
- `PATCH /_sandbox/data_sources/{id}` `{"properties": {...}, "title"?, "author"?}`: the
  person changing the schema (the body of Notion's PATCH /v1/data_sources/{id}, e.g.
  `{"Priority": {"name": "Urgency"}, "Topic": null}`); sends data_source.schema_updated and
  returns `{"updated_properties": [{"id", "name", "action"}]}`.
- `POST /_sandbox/unshare` `{"page_ids": [...]}`: the pages stop being shared with the
  integration: GET and PATCH answer 404 `object_not_found`, queries leave them out, and no
  events are sent for them.
- `POST /_sandbox/faults` `{"error_rate", "status_codes", "latency_ms", "hang_rate",
  "hang_max_ms", "webhook_drop_rate", "webhook_duplicate_rate", "webhook_reorder",
  "webhook_delay_ms": [min, max], "overload_retry_after_s"}`: replaces the whole fault set (a
  key left out is no fault; `{}` clears); returns the fault set in force. Requests hung by
  the previous set are released (answered 504, having changed nothing), so `hang_rate: 1`
  then `{}` is an outage of hung requests and its end. Its `latency_ms`
  comes on top of the reset's; an injected 529 carries `Retry-After: overload_retry_after_s`
  (default 1).
- `POST /_sandbox/subscriptions` `{"url", "event_types"?, "verified"?}` -> `{"id", "url",
  "verification_token", "event_types", "verified", "handshake_status"}` once the handshake
  POST was attempted (`handshake_status` is null when the URL could not be reached).
  `event_types` may name any type Notion documents (400 for others). Like Notion's, a
  subscription sends no event until verified: pass `"verified": true`, or verify it with
- `POST /_sandbox/subscriptions/{id}/verify` `{"verification_token"}`: Notion's Verify
  button (400 when the token is not the one the handshake carried; the token is never
  echoed); returns the subscription. Changes made before it are never sent to it.
- `GET /_sandbox/stats` -> `{"requests": {"GET /v1/pages/{id}": {"200": n, ...}, ...},
  "rate_limited", "faults_injected", "hung", "webhooks": {"handshakes", "sent",
  "delivered", "dropped", "duplicated", "failed", "retried", "abandoned"}}`.
- `GET /_sandbox/pages` -> `{"pages": [...]}`: every page, trashed and unshared ones too,
  in creation order, as full Notion page objects.
- `POST /_sandbox/tokens` -> `{"token"}`: a new token of the same workspace (another
  connection), accepted by /v1 like the configured one, with its own connection budget but
  sharing the workspace limit; it lasts until the next reset.
- `POST /_sandbox/workspace_limit` `{"retry_after_s"}` -> `{"retry_after_s"}`: for that many
  seconds every /v1 request of the workspace, from any token, is answered 429 with
  `rate_limit_reason` "workspace_rate_limit" and the whole seconds left as Retry-After
  (0 lifts it).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelqueue.sandbox.bodies import read_json_object
from reelqueue.sandbox.errors import NotionError, validation_error
from reelqueue.sandbox.faults import FaultSet
from reelqueue.sandbox.gate import sandbox_state
from reelqueue.sandbox.moves import move_page, parse_parent
from reelqueue.sandbox.render import render_page
from reelqueue.sandbox.responses import NotionJSONResponse
from reelqueue.sandbox.schema_events import update_schema
from reelqueue.sandbox.state import ResetOptions, SandboxState
from reelqueue.sandbox.store import Page, User
from reelqueue.sandbox.webhooks import EVENT_TYPES, unknown_event_types

AdminHandler = Callable[[Request, SandboxState], Awaitable[Any]]


def admin_route(method: str, path: str, handler: AdminHandler) -> Route:
    """An admin route: JSON in and out (escaped as /v1's, so any stored text can be sent),
    errors in Notion's shape."""

    async def endpoint(request: Request) -> Response:
        try:
            return NotionJSONResponse(await handler(request, sandbox_state(request)))
        except NotionError as error:
            return error.response(str(uuid.uuid4()))

    return Route(path, endpoint, methods=[method])


async def _body(request: Request) -> dict[str, Any]:
    return await read_json_object(request, required=False)


def _author(state: SandboxState, body: dict[str, Any]) -> User:
    author = body.get("author", "person")
    if author not in ("person", "bot"):
        raise validation_error('author must be "person" or "bot".')
    return state.workspace.person if author == "person" else state.workspace.bot


def _pages(state: SandboxState, raw_ids: Any) -> list[Page]:
    if not isinstance(raw_ids, list) or not all(isinstance(i, str) for i in raw_ids):
        raise validation_error("page_ids must be a list of page ids.")
    return [state.page_or_404(raw_id, as_person=True) for raw_id in raw_ids]


def _render(state: SandboxState, page: Page) -> dict[str, Any]:
    return render_page(page, state.calendar_of(page), state.workspace)


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def info(request: Request, state: SandboxState) -> dict[str, Any]:
    """GET /_sandbox/info."""
    return state.info(_base_url(request))


async def reset(request: Request, state: SandboxState) -> dict[str, Any]:
    """POST /_sandbox/reset."""
    try:
        options = ResetOptions.from_json(await _body(request), state.config)
    except ValueError as error:
        raise validation_error(str(error)) from error
    state.reset(options)
    return state.info(_base_url(request))


async def edit(request: Request, state: SandboxState) -> dict[str, Any]:
    """POST /_sandbox/edit."""
    body = await _body(request)
    pages = _pages(state, body.get("page_ids"))
    state.update_pages(pages, body.get("properties", {}), _author(state, body))
    return {"pages": [_render(state, page) for page in pages]}


async def create_page(request: Request, state: SandboxState) -> dict[str, Any]:
    """POST /_sandbox/pages."""
    body = await _body(request)
    return _render(state, state.create_page(body.get("properties", {}), _author(state, body)))


async def delete_page(request: Request, state: SandboxState) -> dict[str, Any]:
    """DELETE /_sandbox/pages/{id}."""
    body = await _body(request)
    page = state.page_or_404(str(request.path_params["page_id"]), as_person=True)
    state.update_pages([page], {}, _author(state, body), in_trash=True)
    return _render(state, page)


async def unshare(request: Request, state: SandboxState) -> dict[str, Any]:
    """POST /_sandbox/unshare."""
    pages = _pages(state, (await _body(request)).get("page_ids"))
    for page in pages:
        page.shared = False
    return {"page_ids": [page.id for page in pages]}


async def set_faults(request: Request, state: SandboxState) -> dict[str, Any]:
    """POST /_sandbox/faults."""
    try:
        state.faults = FaultSet.from_json(await _body(request))
    except ValueError as error:
        raise validation_error(str(error)) from error
    state.release_hung()
    return state.faults.to_json()


async def subscribe(request: Request, state: SandboxState) -> dict[str, Any]:
    """POST /_sandbox/subscriptions."""
    body = await _body(request)
    url = body.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise validation_error("url must be an http(s) URL.")
    types = body.get("event_types")
    if types is not None:
        unknown = unknown_event_types(types)
        if unknown is None:
            raise validation_error("event_types must be a non-empty list of event type names.")
        if unknown:
            raise validation_error(
                f"event_types: {unknown} are not Notion webhook event types; "
                f"choose from {list(EVENT_TYPES)}."
            )
    verified = body.get("verified", False)
    if not isinstance(verified, bool):
        raise validation_error("verified must be true or false.")
    subscription, status = await state.webhooks.subscribe(
        url, tuple(types) if types is not None else None, verified
    )
    return {**subscription.to_json(), "handshake_status": status}


async def verify(request: Request, state: SandboxState) -> dict[str, Any]:
    """POST /_sandbox/subscriptions/{id}/verify."""
    body = await _body(request)
    raw_id = str(request.path_params["subscription_id"])
    try:
        subscription = state.webhooks.verify(raw_id, body.get("verification_token"))
    except ValueError as error:
        raise validation_error(str(error)) from error
    if subscription is None:
        raise NotionError(404, "object_not_found", f"Could not find subscription {raw_id}.")
    return subscription.to_json()


async def restore_page(request: Request, state: SandboxState) -> dict[str, Any]:
    """POST /_sandbox/pages/{id}/restore."""
    body = await _body(request)
    page = state.page_or_404(str(request.path_params["page_id"]), as_person=True)
    state.update_pages([page], {}, _author(state, body), in_trash=False)
    return _render(state, page)


async def move(request: Request, state: SandboxState) -> dict[str, Any]:
    """POST /_sandbox/pages/{id}/move."""
    body = await _body(request)
    page = state.page_or_404(str(request.path_params["page_id"]), as_person=True)
    calendar = state.calendar_of(page)
    target = parse_parent(body.get("parent"), calendar)
    move_page(page, target, _author(state, body), calendar, state.webhooks)
    return _render(state, page)


async def change_schema(request: Request, state: SandboxState) -> dict[str, Any]:
    """PATCH /_sandbox/data_sources/{id}."""
    body = await _body(request)
    calendar = state.data_source_or_404(str(request.path_params["data_source_id"]))
    author = _author(state, body)
    patch = {key: value for key, value in body.items() if key != "author"}
    changes = update_schema(calendar, patch, author, state.webhooks, state.database_or_404)
    return {"updated_properties": changes}


async def stats(request: Request, state: SandboxState) -> dict[str, Any]:
    """GET /_sandbox/stats."""
    return state.stats.to_json()


async def pages(request: Request, state: SandboxState) -> dict[str, Any]:
    """GET /_sandbox/pages."""
    return {"pages": [_render(state, page) for page in state.calendar.pages.values()]}


async def issue_token(request: Request, state: SandboxState) -> dict[str, Any]:
    """POST /_sandbox/tokens."""
    return {"token": state.limiter.add_connection()}


async def workspace_limit(request: Request, state: SandboxState) -> dict[str, Any]:
    """POST /_sandbox/workspace_limit."""
    seconds = (await _body(request)).get("retry_after_s")
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 <= seconds <= 86_400
    ):
        raise validation_error("retry_after_s must be a number of seconds from 0 to 86400.")
    state.limiter.hold_workspace(float(seconds))
    return {"retry_after_s": math.ceil(state.limiter.workspace_hold_s())}


ROUTES: list[Route] = [
    admin_route("GET", "/_sandbox/info", info),
    admin_route("POST", "/_sandbox/reset", reset),
    admin_route("POST", "/_sandbox/edit", edit),
    admin_route("GET", "/_sandbox/pages", pages),
    admin_route("POST", "/_sandbox/pages", create_page),
    admin_route("DELETE", "/_sandbox/pages/{page_id}", delete_page),
    admin_route("POST", "/_sandbox/unshare", unshare),
    admin_route("POST", "/_sandbox/faults", set_faults),
    admin_route("POST", "/_sandbox/subscriptions", subscribe),
    admin_route("POST", "/_sandbox/subscriptions/{subscription_id}/verify", verify),
    admin_route("POST", "/_sandbox/pages/{page_id}/restore", restore_page),
    admin_route("POST", "/_sandbox/pages/{page_id}/move", move),
    admin_route("PATCH", "/_sandbox/data_sources/{data_source_id}", change_schema),
    admin_route("GET", "/_sandbox/stats", stats),
    admin_route("POST", "/_sandbox/tokens", issue_token),
    admin_route("POST", "/_sandbox/workspace_limit", workspace_limit),
]
