"""Where a calendar page went: which events name a page to read, and where a read found it.

Notion's `page.moved`, `page.undeleted` and `page.deleted` events name the page but not
the whole story (a move event's `data.parent` is only the new parent), so each one asks
for a read of that page by id. A page whose parent is not one of our data sources was
moved out of the calendar; a full reconcile also looks for the pages of tasks in flight
that its queries no longer return, and reads them one by one.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.notion import InvalidNotionId, normalize_id
from reelqueue.queue import MOVED
from reelqueue.statuses import StatusTable

__all__ = [
    "PAGE_EVENTS",
    "SCHEMA_EVENTS",
    "SINGLE_EVENTS",
    "moved_to",
    "pages_to_look_for",
]

# Events that name a page to read by id.
PAGE_EVENTS = frozenset({"page.deleted", "page.moved", "page.undeleted"})
# Events that ask for a data source's schema to be read again.
SCHEMA_EVENTS = frozenset({"data_source.schema_updated"})
# Events that each ring the doorbell on their own, naming their entity.
SINGLE_EVENTS = PAGE_EVENTS | SCHEMA_EVENTS


def _id(value: Any) -> str | None:
    try:
        return normalize_id(value)
    except InvalidNotionId:
        return None


def moved_to(page: dict[str, Any], calendars: Collection[str]) -> str | None:
    """Where a page read by id now lives, in words; None while it is a row of our calendars."""
    parent = page.get("parent")
    if not isinstance(parent, dict):
        return "an unknown place"
    kind = parent.get("type")
    target = parent.get(kind) if isinstance(kind, str) else None
    if kind == "data_source_id" and _id(target) in calendars:
        return None
    if kind == "workspace":
        return "the top level of the workspace"
    shown = _id(target) or str(target)
    return f"{str(kind).removesuffix('_id').replace('_', ' ')} {shown}"


async def pages_to_look_for(
    conn: AsyncConnection, data_source_id: str, seen: Collection[str], table: StatusTable
) -> dict[str, str | None]:
    """Pages a full reconcile should have met and did not, with the Status label last seen.

    Those of active tasks not marked missing (a page moved out or deleted while no event
    reached us), and those of held tasks (moved out: are they back?).
    """
    active = [row.status for row in table if table.is_active(row.status)]
    rows = await conn.execute(
        text(
            "SELECT notion_page_id, notion_seen ->> 'status' AS label FROM tasks"
            " WHERE data_source_id = :source AND ("
            "   (page_missing IS NULL AND status = ANY(CAST(:active AS text[])))"
            "   OR page_missing = :moved)"
        ),
        {"source": data_source_id, "active": active, "moved": MOVED},
    )
    return {row.notion_page_id: row.label for row in rows if row.notion_page_id not in seen}
