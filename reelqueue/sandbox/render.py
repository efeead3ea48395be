"""Notion object shapes: pages, users, databases and their data sources, as JSON.

Under API versions before 2026-03-11 pages, databases and data sources carry `archived`, the
deprecated alias of `in_trash`; from 2026-03-11 on they do not (see `shows_archived`). From
2026-12-01 on, a query lists only each page's title unless `filter_properties` asks for more
(see `lists_title_only`).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from reelqueue.sandbox.ids import compact_id, decode_property_id
from reelqueue.sandbox.moves import moved_out_properties, page_parent
from reelqueue.sandbox.properties import plain_text, rich_text
from reelqueue.sandbox.store import Calendar, Page, Workspace
from reelqueue.sandbox.timestamps import format_page_time

NOTION_URL = "https://www.notion.so"
ARCHIVED_REMOVED_IN = "2026-03-11"
TITLE_ONLY_LISTS_FROM = "2026-12-01"


def shows_archived(notion_version: str | None) -> bool:
    """Whether objects answered under this Notion-Version carry the old `archived` key."""
    return notion_version is None or notion_version.strip() < ARCHIVED_REMOVED_IN


def lists_title_only(notion_version: str | None) -> bool:
    """Whether queries under this Notion-Version answer only the title unless asked for more."""
    return notion_version is not None and notion_version.strip() >= TITLE_ONLY_LISTS_FROM


def notion_url(title: str, object_id: str) -> str:
    """The notion.so URL of a page or database: a slug of its title, then its compact id."""
    slug = "-".join(re.findall(r"[A-Za-z0-9]+", title))
    return (
        f"{NOTION_URL}/{slug}-{compact_id(object_id)}"
        if slug
        else (f"{NOTION_URL}/{compact_id(object_id)}")
    )


def _copy(value: Any) -> Any:
    """A copy of a JSON value (much faster than copy.deepcopy for these small trees)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def render_page(
    page: Page,
    calendar: Calendar,
    workspace: Workspace,
    only_properties: Collection[str] | None = None,
    *,
    archived: bool = True,
) -> dict[str, Any]:
    """A page object with the keys and key order of a recorded Notion page.

    `only_properties` (property ids, URL-encoded or raw; not names) trims `properties`, as
    the `filter_properties` query parameter does. `archived` adds the pre-2026-03-11 alias.
    """
    properties: dict[str, Any] = {}
    wanted = set(only_properties) if only_properties is not None else None
    for name, prop in calendar.schema.items():
        if wanted is not None and not ({prop.id, decode_property_id(prop.id)} & wanted):
            continue
        value = _copy(page.values.get(name))
        properties[name] = {"id": prop.id, "type": prop.type, prop.type: value}
    if page.moved_to is not None:
        properties = moved_out_properties(page, calendar)
    title = plain_text(page.values.get(calendar.title_property().name) or [])
    answer: dict[str, Any] = {
        "object": "page",
        "id": page.id,
        "created_time": format_page_time(page.created_time),
        "last_edited_time": format_page_time(page.last_edited_time),
        "created_by": page.created_by.reference(),
        "last_edited_by": page.last_edited_by.reference(),
        "cover": _copy(page.cover),
        "icon": _copy(page.icon),
        "parent": page_parent(page, calendar),
    }
    if archived:
        answer["archived"] = page.in_trash
    answer.update(
        {
            "in_trash": page.in_trash,
            "is_archived": False,
            "is_locked": False,
            "properties": properties,
            "url": notion_url(title, page.id),
            "public_url": None,
        }
    )
    return answer


def render_bot(workspace: Workspace) -> dict[str, Any]:
    """The integration's bot user, as `GET /v1/users/me` returns it."""
    return {
        "object": "user",
        "id": workspace.bot.id,
        "name": workspace.bot.name,
        "avatar_url": None,
        "type": "bot",
        "bot": {
            "owner": {"type": "workspace", "workspace": True},
            "workspace_name": workspace.workspace_name,
            "workspace_id": workspace.workspace_id,
            "workspace_limits": {"max_file_upload_size_in_bytes": 5_368_709_120},
        },
    }


def _title(text: str) -> list[dict[str, Any]]:
    return [rich_text(text)]


def render_database(
    calendar: Calendar, workspace: Workspace, *, archived: bool = True
) -> dict[str, Any]:
    """The database object: a container whose `data_sources` lists its one data source.

    Its `description` is the database's own (written by POST and PATCH /v1/databases).
    """
    answer: dict[str, Any] = {
        "object": "database",
        "id": calendar.database_id,
        "title": _title(calendar.title),
        "description": _copy(calendar.database_description),
        "parent": {"type": "page_id", "page_id": calendar.parent_page_id},
        "is_inline": calendar.is_inline,
        "in_trash": False,
    }
    if archived:
        answer["archived"] = False
    answer.update(
        {
            "is_locked": False,
            "created_time": format_page_time(calendar.created_time),
            "last_edited_time": format_page_time(calendar.created_time),
            "data_sources": [{"id": calendar.data_source_id, "name": calendar.title}],
            "icon": _copy(calendar.icon),
            "cover": _copy(calendar.cover),
            "url": notion_url(calendar.title, calendar.database_id),
            "public_url": None,
        }
    )
    return answer


def render_data_source(
    calendar: Calendar, workspace: Workspace, *, archived: bool = True
) -> dict[str, Any]:
    """The data source object: its schema, under its database, and its own description."""
    creator = (calendar.created_by or workspace.person).reference()
    answer: dict[str, Any] = {
        "object": "data_source",
        "id": calendar.data_source_id,
        "created_time": format_page_time(calendar.created_time),
        "last_edited_time": format_page_time(calendar.created_time),
        "created_by": creator,
        "last_edited_by": creator,
        "icon": _copy(calendar.icon),
        "cover": _copy(calendar.cover),
        "parent": {"type": "database_id", "database_id": calendar.database_id},
        "database_parent": {"type": "page_id", "page_id": calendar.parent_page_id},
        "in_trash": calendar.data_source_in_trash,
    }
    if archived:
        answer["archived"] = calendar.data_source_in_trash
    answer.update(
        {
            "is_inline": calendar.is_inline,
            "title": _title(calendar.title),
            "description": _copy(calendar.data_source_description),
            "properties": {name: prop.render() for name, prop in calendar.schema.items()},
            "url": notion_url(calendar.title, calendar.data_source_id),
            "public_url": None,
        }
    )
    return answer
