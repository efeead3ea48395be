"""Edits of a data source, and the webhook events they send.

A schema change sends data_source.schema_updated; trashing or restoring the data source
sends data_source.deleted or data_source.undeleted (both gathered like page.deleted: a trash
undone inside the window sends nothing). The schema event follows Notion's sample payload
and the JS SDK's type: `entity` is the data source (`type: "data_source"`), `data.parent`
the page the database sits in, and `data.updated_properties` lists `{id, name, action}` with
`action` one of created, updated (renamed) or deleted (`name` is null then).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reelqueue.sandbox.datasource import update_data_source
from reelqueue.sandbox.store import Calendar, User
from reelqueue.sandbox.timestamps import utc_now
from reelqueue.sandbox.webhooks import WebhookDispatcher


def schema_diff(before: dict[str, str], after: dict[str, str]) -> list[dict[str, Any]]:
    """Property changes between two maps of property id to name, in a stable order."""
    changes: list[dict[str, Any]] = []
    for prop_id, name in after.items():
        if prop_id not in before:
            changes.append({"id": prop_id, "name": name, "action": "created"})
        elif before[prop_id] != name:
            changes.append({"id": prop_id, "name": name, "action": "updated"})
    changes.extend(
        {"id": prop_id, "name": None, "action": "deleted"}
        for prop_id in before
        if prop_id not in after
    )
    return changes


def _names(calendar: Calendar) -> dict[str, str]:
    return {prop.id: name for name, prop in calendar.schema.items()}


def update_schema(
    calendar: Calendar,
    body: dict[str, Any],
    author: User,
    webhooks: WebhookDispatcher,
    find_database: Callable[[str], Calendar],
    *,
    archived_alias: bool = True,
) -> list[dict[str, Any]]:
    """Apply a data source PATCH body; send the events it causes; return the schema changes.

    Only property changes count as schema changes: new options of a select do not change
    the schema's property list, so they send nothing.
    """
    before = _names(calendar)
    trashed = update_data_source(calendar, body, find_database, archived_alias=archived_alias)
    changes = schema_diff(before, _names(calendar))
    parent = {"id": calendar.parent_page_id, "type": "page"}
    now = utc_now()
    if changes:
        webhooks.record(
            calendar.data_source_id,
            "data_source.schema_updated",
            parent,
            author.author(),
            now,
            entity_type="data_source",
            schema_changes=changes,
        )
    if trashed is not None:
        kind = "data_source.deleted" if trashed else "data_source.undeleted"
        webhooks.record(
            calendar.data_source_id, kind, parent, author.author(), now, entity_type="data_source"
        )
    return changes
