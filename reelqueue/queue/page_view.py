"""What a task's Notion page should show, and which of those fields differ from what it shows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reelqueue.statuses import StatusTable

__all__ = ["fields_to_write", "page_fields"]


def page_fields(
    table: StatusTable, status: str, error_log: str | None, youtube_url: str | None
) -> dict[str, Any]:
    """The page's Status label, Error Log and YouTube URL for a task in this state."""
    return {
        "status": table.label(status),
        "error_log": error_log or "",
        "youtube_url": youtube_url or None,
    }


def fields_to_write(desired: Mapping[str, Any], seen: Mapping[str, Any]) -> dict[str, Any]:
    """The desired fields that differ from what Notion showed at our last look."""
    shown = {
        "status": seen.get("status"),
        "error_log": seen.get("error_log") or "",
        "youtube_url": seen.get("youtube_url") or None,
    }
    return {key: value for key, value in desired.items() if shown.get(key) != value}
