"""A Notion page of the content calendar, reduced to the values ingest reacts to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reelqueue.calendar import PropertyNames
from reelqueue.notion import normalize_id, page_properties

__all__ = ["PageSnapshot"]


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _name(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


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

    @classmethod
    def from_page(cls, page: dict[str, Any], names: PropertyNames) -> PageSnapshot:
        """Read a Notion page object; odd or missing values become empty, never an error."""
        values = page_properties(page)
        parent = page.get("parent") if isinstance(page.get("parent"), dict) else {}
        editor = page.get("last_edited_by")
        data_source = parent.get("data_source_id") if isinstance(parent, dict) else None
        return cls(
            page_id=normalize_id(str(page["id"])),
            data_source_id=normalize_id(data_source) if isinstance(data_source, str) else None,
            last_edited_time=_time(page.get("last_edited_time")),
            last_edited_by=editor.get("id") if isinstance(editor, dict) else None,
            in_trash=bool(page.get("in_trash") or page.get("archived")),
            title=_text(values.get(names.title)),
            channel=_name(values.get(names.channel)),
            topic=_text(values.get(names.topic)),
            story_direction=_text(values.get(names.story_direction)),
            status_label=_name(values.get(names.status)),
            priority_label=_name(values.get(names.priority)),
            error_log=_text(values.get(names.error_log)),
            youtube_url=_name(values.get(names.youtube_url)),
        )
