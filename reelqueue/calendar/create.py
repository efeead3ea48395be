"""A new content calendar's schema, for POST /v1/databases: everything reelqueue reads and writes.

Notion's API cannot create a `status` property (Create a database, Limitations), so Status
is a `select` holding every configured label; its colors follow Notion's status groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reelqueue.calendar.schema import PropertyNames
from reelqueue.errors import UserError
from reelqueue.statuses import PRIORITIES, STATUS_GROUPS, Kind, StatusTable

__all__ = ["MAX_TITLE_LENGTH", "calendar_properties", "calendar_title"]

MAX_TITLE_LENGTH = 2000
_GROUP_COLORS = dict(zip(STATUS_GROUPS, ("gray", "blue", "green"), strict=True))
_PRIORITY_COLORS = {"High": "red", "Normal": "default", "Low": "gray"}
_CHANNEL_COLORS = ("blue", "green", "purple", "orange", "pink", "yellow", "brown", "red", "gray")


def _status_color(table: StatusTable, label: str) -> str:
    kinds = {table[status].kind for status in table.statuses_for_label(label)}
    if kinds == {Kind.ERROR}:
        return "red"
    if kinds & {Kind.CANCELLED, Kind.INVALID}:
        return "orange"
    return _GROUP_COLORS[table.group(label)]


def calendar_properties(
    names: PropertyNames, table: StatusTable, channel_ids: Sequence[str]
) -> dict[str, Any]:
    """`initial_data_source.properties` of a calendar ready for reelqueue, Status a select."""
    channels = [
        {"name": channel, "color": _CHANNEL_COLORS[i % len(_CHANNEL_COLORS)]}
        for i, channel in enumerate(dict.fromkeys(channel_ids))
    ]
    statuses = [{"name": label, "color": _status_color(table, label)} for label in table.labels]
    priorities = [
        {"name": name, "color": _PRIORITY_COLORS.get(name, "default")} for name in PRIORITIES
    ]
    return {
        names.title: {"title": {}},
        names.channel: {"select": {"options": channels}},
        names.topic: {"rich_text": {}},
        names.story_direction: {"rich_text": {}},
        names.status: {"select": {"options": statuses}},
        names.priority: {"select": {"options": priorities}},
        names.error_log: {"rich_text": {}},
        names.youtube_url: {"url": {}},
        names.updated: {"date": {}},
    }


def calendar_title(title: str) -> list[dict[str, Any]]:
    """The database title as rich text; Notion counts its 2,000-character limit in UTF-16 units."""
    text = title.strip()
    if not text:
        raise UserError("--title is empty: give the calendar a name")
    if len(text.encode("utf-16-le")) // 2 > MAX_TITLE_LENGTH:
        raise UserError(f"--title is longer than Notion's {MAX_TITLE_LENGTH} characters")
    return [{"type": "text", "text": {"content": text}}]
