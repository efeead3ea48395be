"""Databases as Notion's API lets them change: PATCH /v1/databases/{id}, and descriptions.

PATCH takes the official SDK's updateDatabase keys. It changes `title`, `description`,
`is_inline`, `icon` and `cover`; `parent`, `in_trash` (`archived` before 2026-03-11) and
`is_locked` are a 400 saying the sandbox does not support them; any other key is Notion's
"should be not present" 400. An icon is checked by `icons.parse_icon`. The body is validated
in full before anything changes. The database's description is its own: the data source's
description is not written here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from reelqueue.sandbox.datasource import not_present, title_text
from reelqueue.sandbox.errors import shape_error, validation_error
from reelqueue.sandbox.icons import parse_icon
from reelqueue.sandbox.properties import parse_rich_text
from reelqueue.sandbox.store import Calendar

# Keys the SDK sends that the sandbox does not model, and what they would do.
NOT_SUPPORTED = {
    "parent": "moving a database",
    "in_trash": "trashing or restoring a database",
    "is_locked": "locking a database",
}


def description_text(raw: Any, path: str = "body.description") -> list[dict[str, Any]]:
    """A database description in a request, checked as any rich text; a 400 if it is not one."""
    return parse_rich_text(raw, path)


def update_database(calendar: Calendar, body: dict[str, Any], *, archived_alias: bool) -> None:
    """Validate the whole PATCH body, then apply it; raise a 400 NotionError if any is bad.

    `archived_alias`: the request's Notion-Version still takes `archived` for `in_trash`.
    """
    changes: list[Callable[[], None]] = []
    for key, value in body.items():
        wanted = "in_trash" if key == "archived" and archived_alias else key
        if wanted in NOT_SUPPORTED:
            raise validation_error(
                f"body.{key}: the sandbox does not support {NOT_SUPPORTED[wanted]} "
                "(PATCH /v1/databases changes title, description, is_inline, icon and cover)."
            )
        if key == "title":
            changes.append(functools.partial(setattr, calendar, "title", title_text(value)))
        elif key == "description":
            text = description_text(value)
            changes.append(functools.partial(setattr, calendar, "database_description", text))
        elif key == "is_inline":
            if not isinstance(value, bool):
                raise shape_error("body.is_inline", "a boolean", value)
            changes.append(functools.partial(setattr, calendar, "is_inline", value))
        elif key == "icon":
            changes.append(functools.partial(setattr, calendar, "icon", parse_icon(value)))
        elif key == "cover":
            if value is not None and not isinstance(value, dict):
                raise shape_error("body.cover", "an object or `null`", value)
            changes.append(functools.partial(setattr, calendar, "cover", value))
        else:
            raise not_present(key, value)
    for change in changes:
        change()
