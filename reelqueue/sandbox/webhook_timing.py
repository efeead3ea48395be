"""When Notion sends each webhook event: at once, or combined with others when a window ends.

Pure logic on an explicit clock (seconds, any origin), so the rules can be tested without
waiting. The rules, from Notion's "Event types & delivery" page and its changelog entry of
2026-10-15 ("Faster page webhooks"):

- `page.created`, and the types Notion does not aggregate (`page.locked`, `comment.*` ...),
  are sent at once.
- `page.properties_updated`: the first one of a quiet page is sent at once and opens a
  window of `window_s` (Notion: one minute) from that moment. Later property edits of the
  page before the window ends are combined into one event (the union of the property ids,
  every author, the latest timestamp) sent when the window ends. The window is fixed from
  the first event, not sliding, so a page edited without pause still gets an event at least
  once a window. When it has ended the page is quiet again: its next edit goes out at once.
- Every other aggregated type (`page.deleted`, `page.undeleted`, `page.moved`,
  `data_source.schema_updated` ...) is gathered per entity and type from its first change
  and sent when `window_s` has passed. Changes that cancel out inside the window (trashed
  and restored, moved and moved back, a property created and removed) send nothing, as
  Notion's docs warn ("or none at all if the state returns to its original one").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

AT_ONCE_TYPES = frozenset(
    {
        "page.created",
        "page.locked",
        "page.unlocked",
        "comment.created",
        "comment.updated",
        "comment.deleted",
    }
)
FIRST_AT_ONCE_TYPES = frozenset({"page.properties_updated"})
OPPOSITES = {
    "page.deleted": "page.undeleted",
    "page.undeleted": "page.deleted",
    "data_source.deleted": "data_source.undeleted",
    "data_source.undeleted": "data_source.deleted",
}


@dataclass
class Change:
    """One change that may become (part of) a webhook event."""

    entity_id: str
    entity_type: str
    type: str
    parent: dict[str, Any]
    author: dict[str, Any]
    occurred: datetime
    subscription_ids: frozenset[str]
    property_ids: tuple[str, ...] = ()
    schema_changes: tuple[dict[str, Any], ...] = ()


@dataclass
class Event:
    """An event to send, possibly the sum of several changes to one entity."""

    entity_id: str
    entity_type: str
    type: str
    parent: dict[str, Any]
    occurred: datetime
    subscription_ids: set[str]
    authors: list[dict[str, Any]] = field(default_factory=list)
    property_ids: list[str] = field(default_factory=list)
    schema_changes: list[dict[str, Any]] = field(default_factory=list)
    original_parent: dict[str, Any] | None = None

    @classmethod
    def of(cls, change: Change) -> Event:
        """An event holding just this change."""
        event = cls(
            change.entity_id,
            change.entity_type,
            change.type,
            dict(change.parent),
            change.occurred,
            set(change.subscription_ids),
        )
        event.merge(change)
        return event

    def merge(self, change: Change) -> None:
        """Fold a later change of the same entity and type into this event."""
        self.parent = dict(change.parent)
        self.occurred = max(self.occurred, change.occurred)
        self.subscription_ids |= change.subscription_ids
        if change.author not in self.authors:
            self.authors.append(dict(change.author))
        for property_id in change.property_ids:
            if property_id not in self.property_ids:
                self.property_ids.append(property_id)
        for schema_change in change.schema_changes:
            self._merge_schema_change(schema_change)

    def _merge_schema_change(self, new: dict[str, Any]) -> None:
        for i, old in enumerate(self.schema_changes):
            if old["id"] != new["id"]:
                continue
            if old["action"] == "created" and new["action"] == "deleted":
                del self.schema_changes[i]
            elif old["action"] == "created":
                self.schema_changes[i] = {**new, "action": "created"}
            else:
                self.schema_changes[i] = dict(new)
            return
        self.schema_changes.append(dict(new))

    def is_void(self) -> bool:
        """Whether the changes gathered cancel out, leaving nothing to tell."""
        if self.type == "page.moved":
            return self.original_parent == self.parent
        if self.type.endswith(".schema_updated"):
            return not self.schema_changes
        return False


@dataclass
class _Window:
    """A page's open property window: when it ends, and the edits gathered since it opened."""

    ends_at: float
    gathered: Event | None = None


class Aggregator:
    """Decides which events go out now and which wait for their window to end."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._windows: dict[tuple[str, str], _Window] = {}
        self._pending: dict[tuple[str, str], tuple[float, Event]] = {}

    def add(
        self, change: Change, now: float, moved_from: dict[str, Any] | None = None
    ) -> list[Event]:
        """Take a change at `now`; return the events to send at once (often none).

        `moved_from` is the entity's parent before a `page.moved` change, so that a page
        moved back where it was within the window sends nothing.
        """
        ready = self.due(now)
        key = (change.entity_id, change.type)
        if change.type in AT_ONCE_TYPES:
            ready.append(Event.of(change))
        elif change.type in FIRST_AT_ONCE_TYPES:
            window = self._windows.get(key)
            if window is None:
                self._windows[key] = _Window(now + self.window_s)
                ready.append(Event.of(change))
            elif window.gathered is None:
                window.gathered = Event.of(change)
            else:
                window.gathered.merge(change)
        else:
            self._gather(key, change, now, moved_from)
        return ready

    def _gather(
        self, key: tuple[str, str], change: Change, now: float, moved_from: dict[str, Any] | None
    ) -> None:
        opposite = (change.entity_id, OPPOSITES.get(change.type, ""))
        if opposite in self._pending:
            del self._pending[opposite]
            return
        if key in self._pending:
            self._pending[key][1].merge(change)
        else:
            event = Event.of(change)
            event.original_parent = moved_from
            self._pending[key] = (now + self.window_s, event)
        if self._pending[key][1].is_void():
            del self._pending[key]

    def due(self, now: float) -> list[Event]:
        """Remove and return the events whose window has ended by `now`."""
        ready: list[Event] = []
        for key, window in list(self._windows.items()):
            if window.ends_at <= now:
                del self._windows[key]
                if window.gathered is not None:
                    ready.append(window.gathered)
        for key, (due, event) in list(self._pending.items()):
            if due <= now:
                del self._pending[key]
                ready.append(event)
        return ready

    def next_due(self) -> float | None:
        """When the earliest open window or gathered event ends, if any."""
        times = [w.ends_at for w in self._windows.values()]
        times.extend(due for due, _ in self._pending.values())
        return min(times, default=None)

    def clear(self) -> None:
        """Forget every window and gathered event."""
        self._windows.clear()
        self._pending.clear()
