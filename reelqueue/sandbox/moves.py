"""Moving a calendar page out to a parent page, or back into the calendar (page.moved).

A page moved out is no longer a row of the data source: queries leave it out, and its GET
shows `parent: {"type": "page_id", ...}` and only a title property, as a page under a
page has in Notion. It stays shared with the integration (as if its new parent were
shared too) and keeps its calendar values hidden, so moving it back shows them again.
While it is out, its calendar properties cannot be written (Notion answers 400: the
property does not exist there). The move itself sends a `page.moved` event whose
`data.parent` is the new parent.
"""

from __future__ import annotations

from typing import Any

from reelqueue.sandbox.errors import shape_error, validation_error
from reelqueue.sandbox.ids import normalize_id
from reelqueue.sandbox.store import Calendar, Page, User
from reelqueue.sandbox.timestamps import utc_now
from reelqueue.sandbox.webhooks import WebhookDispatcher


def page_parent(page: Page, calendar: Calendar) -> dict[str, Any]:
    """A page's `parent` as its GET shows it (`calendar`: the data source it belongs to)."""
    if page.moved_to is not None:
        return {"type": "page_id", "page_id": page.moved_to}
    return calendar.parent()


def event_parent(page: Page, calendar: Calendar) -> dict[str, Any]:
    """A page's parent as webhook events name it."""
    if page.moved_to is not None:
        return {"id": page.moved_to, "type": "page"}
    return calendar.event_parent()


def moved_out_properties(page: Page, calendar: Calendar) -> dict[str, Any]:
    """The properties of a page under a page: its title alone, keyed `title`."""
    title = calendar.title_property()
    value = page.values.get(title.name) or []
    return {"title": {"id": "title", "type": "title", "title": value}}


def refuse_writes_outside(pages: list[Page], properties: Any) -> None:
    """A 400 when calendar properties are written to a page that was moved out."""
    if not properties:
        return
    for page in pages:
        if page.moved_to is not None:
            names = ", ".join(str(k) for k in properties)
            raise validation_error(
                f"{names} is not a property that exists on page {page.id}: it was moved out of "
                "the data source."
            )


def parse_parent(raw: Any, calendar: Calendar) -> str | None:
    """The page id a move body names, or None for the page's own data source (or database)."""
    if not isinstance(raw, dict):
        raise shape_error("body.parent", "an object", raw)
    kind = raw.get("type")
    if kind is None:
        kinds = [k for k in ("page_id", "data_source_id", "database_id") if k in raw]
        kind = kinds[0] if len(kinds) == 1 else None
    target = raw.get(kind) if isinstance(kind, str) else None
    target_id = normalize_id(target) if isinstance(target, str) else None
    if target_id is None:
        raise shape_error(
            "body.parent", "an object with a page_id, data_source_id or database_id", raw
        )
    if kind == "page_id":
        return target_id
    ours = calendar.data_source_id if kind == "data_source_id" else calendar.database_id
    if kind not in ("data_source_id", "database_id") or target_id != ours:
        raise validation_error(
            f"A page can only be moved back into its own data source, not {kind} {target_id}."
        )
    return None


def move_page(
    page: Page,
    target: str | None,
    author: User,
    calendar: Calendar,
    webhooks: WebhookDispatcher,
) -> None:
    """Move a page under page `target` (None: back into the calendar); send page.moved."""
    if page.in_trash:
        raise validation_error(
            "Can't edit block that is archived. You must unarchive the block before editing."
        )
    if target == page.moved_to:
        return
    before = event_parent(page, calendar)
    page.moved_to = target
    now = utc_now()
    page.last_edited_time = now
    page.last_edited_by = author
    if page.shared:
        webhooks.record(
            page.id,
            "page.moved",
            event_parent(page, calendar),
            author.author(),
            now,
            moved_from=before,
        )
