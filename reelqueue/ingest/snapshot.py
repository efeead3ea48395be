"""A Notion page of the content calendar, reduced to the values ingest reacts to.

Every text is storable as read (NUL dropped, lone surrogates replaced: see
`reelqueue.notion.properties.clean_text`), so an odd value never stops a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reelqueue.calendar import PropertyNames
from reelqueue.notion import InvalidNotionId, normalize_id, page_properties
from reelqueue.notion.properties import clean_text

__all__ = ["PageSnapshot"]


def _id(value: Any) -> str | None:
    try:
        return normalize_id(value)
    except InvalidNotionId:
        return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _name(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _what(value: Any) -> str:
    if isinstance(value, bool):
        return "a checkbox value"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    return "a list" if isinstance(value, list) else "an empty value"


def _not_text(page: dict[str, Any], name: str) -> str | None:
    """What a title or rich-text property holds instead of text, in words; None when text."""
    properties = page.get("properties")
    prop = properties.get(name) if isinstance(properties, dict) else None
    if not isinstance(prop, dict):
        return None
    kind = prop.get("type")
    if kind not in ("title", "rich_text"):
        return f"a {kind} value" if isinstance(kind, str) and kind.isidentifier() else "no text"
    value = prop.get(kind)
    if not isinstance(value, list):
        return None if value is None else _what(value)
    for element in value:
        text = element.get("plain_text") if isinstance(element, dict) else element
        if text is None and isinstance(element, dict):
            inner = element.get("text")
            text = inner.get("content") if isinstance(inner, dict) else None
        if not isinstance(text, str):
            return _what(text)
    return None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class PageSnapshot:
    """What one read of a page told us."""

    page_id: str
    data_source_id: str | None
    last_edited_time: datetime | None
    last_edited_by: str | None
    in_trash: bool
    title: str
    channel: str | None
    topic: str
    story_direction: str
    status_label: str | None
    priority_label: str | None
    error_log: str
    youtube_url: str | None
    # Title or Topic holding something other than text: ("Title", what it holds, in words).
    not_text: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_page(cls, page: dict[str, Any], names: PropertyNames) -> PageSnapshot:
        """Read a Notion page object; odd or missing values become empty, never an error.

        Only a page without a usable id raises (InvalidNotionId): there is nothing to key it by.
        """
        values = page_properties(page)
        parent = page.get("parent") if isinstance(page.get("parent"), dict) else {}
        editor = page.get("last_edited_by")
        editor_id = editor.get("id") if isinstance(editor, dict) else None
        data_source = parent.get("data_source_id") if isinstance(parent, dict) else None
        return cls(
            page_id=normalize_id(page.get("id")),
            data_source_id=_id(data_source),
            last_edited_time=_time(page.get("last_edited_time")),
            last_edited_by=clean_text(editor_id) if isinstance(editor_id, str) else None,
            in_trash=bool(page.get("in_trash") or page.get("archived")),
            title=_text(values.get(names.title)),
            channel=_name(values.get(names.channel)),
            topic=_text(values.get(names.topic)),
            story_direction=_text(values.get(names.story_direction)),
            status_label=_name(values.get(names.status)),
            priority_label=_name(values.get(names.priority)),
            error_log=_text(values.get(names.error_log)),
            youtube_url=_name(values.get(names.youtube_url)),
            not_text=tuple(
                (shown, what)
                for shown, name in (("Title", names.title), ("Topic", names.topic))
                if (what := _not_text(page, name)) is not None
            ),
        )
