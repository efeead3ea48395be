"""The content calendar's schema: its properties, the status vocabulary, and option colors."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from reelqueue.sandbox.ids import encode_property_id, new_id

COLORS = ("default", "gray", "brown", "orange", "yellow", "green", "blue", "purple", "pink", "red")

STATUS_LABELS: tuple[str, ...] = (
    "Draft",
    "Queued",
    "Processing",
    "Generating Assets",
    "Assets Ready",
    "Assets Approved",
    "Generating Composites",
    "Composites Ready",
    "Generating Video",
    "Video Ready",
    "Video Approved",
    "Generating Audio",
    "Audio Ready",
    "Audio Approved",
    "Generating SFX",
    "SFX Ready",
    "Assembling",
    "Assembly Ready",
    "Final Review",
    "Approved",
    "Uploading",
    "Published",
    "Asset Error",
    "Composite Error",
    "Video Error",
    "Audio Error",
    "SFX Error",
    "Assembly Error",
    "Upload Error",
    "Cancelled",
    "Invalid Input",
)

_TO_DO = ("Draft", "Queued")
_COMPLETE = ("Published", "Cancelled", "Invalid Input")
STATUS_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("to_do", "To-do", "gray"),
    ("in_progress", "In progress", "blue"),
    ("complete", "Complete", "green"),
)

PRIORITIES: tuple[tuple[str, str], ...] = (("High", "red"), ("Normal", "default"), ("Low", "gray"))

RAW_PROPERTY_IDS = {
    "Title": "title",
    "Channel": "C`h;",
    "Topic": "T~p?",
    "Story Direction": "Sd[r",
    "Status": "U`;C",
    "Priority": "DcVz",
    "Error Log": "E%Lg",
    "YouTube URL": "yt:U",
    "Updated": "u@pd",
}
WRITABLE_TYPES = (
    "title",
    "rich_text",
    "select",
    "status",
    "date",
    "url",
    "number",
    "checkbox",
    "people",
)
CREATABLE_TYPES = ("rich_text", "select", "date", "url", "number", "checkbox", "people")


def status_group(label: str) -> str:
    """The status group (to_do, in_progress, complete) a label of the vocabulary belongs to."""
    if label in _TO_DO:
        return "to_do"
    if label in _COMPLETE or label.endswith("Error"):
        return "complete"
    return "in_progress"


def status_color(label: str) -> str:
    """A color that tells the state at a glance on the board."""
    if label == "Draft":
        return "default"
    if label == "Queued":
        return "gray"
    if label.endswith("Error"):
        return "red"
    if label == "Invalid Input":
        return "orange"
    if label == "Cancelled":
        return "brown"
    if label in ("Published", "Approved") or label.endswith("Approved"):
        return "green"
    if label.endswith("Ready") or label == "Final Review":
        return "yellow"
    return "blue"


@dataclass
class SelectOption:
    """One option of a select or status property."""

    id: str
    name: str
    color: str

    def value(self) -> dict[str, Any]:
        """The option as a page's property value shows it."""
        return {"id": self.id, "name": self.name, "color": self.color}

    def schema(self) -> dict[str, Any]:
        """The option as the data source schema shows it."""
        return {"id": self.id, "name": self.name, "color": self.color, "description": None}


@dataclass
class StatusGroup:
    """A group of status options (To-do, In progress, Complete)."""

    id: str
    key: str
    name: str
    color: str
    option_ids: list[str] = field(default_factory=list)


@dataclass
class PropertySchema:
    """One property of the data source: its id (URL-encoded), name, type and options."""

    id: str
    name: str
    type: str
    options: list[SelectOption] = field(default_factory=list)
    groups: list[StatusGroup] = field(default_factory=list)

    def option_named(self, name: str) -> SelectOption | None:
        """The option with this exact name, if any."""
        return next((o for o in self.options if o.name == name), None)

    def option_with_id(self, option_id: str) -> SelectOption | None:
        """The option with this id, if any."""
        return next((o for o in self.options if o.id == option_id), None)

    def add_option(self, option: SelectOption) -> None:
        """Add an option; a new status option joins the To-do group, as in Notion."""
        self.options.append(option)
        if self.groups:
            self.groups[0].option_ids.append(option.id)

    def render(self) -> dict[str, Any]:
        """The property as `GET /v1/data_sources/{id}` shows it."""
        config: dict[str, Any] = {}
        if self.type == "select":
            config = {"options": [o.schema() for o in self.options]}
        elif self.type == "status":
            config = {
                "options": [o.schema() for o in self.options],
                "groups": [
                    {"id": g.id, "name": g.name, "color": g.color, "option_ids": list(g.option_ids)}
                    for g in self.groups
                ],
            }
        elif self.type == "number":
            config = {"format": "number"}
        return {
            "id": self.id,
            "name": self.name,
            "description": "",
            "type": self.type,
            self.type: config,
        }


def next_color(rng: random.Random) -> str:
    """A color for an option Notion creates on the fly (it picks one at random too)."""
    return rng.choice(COLORS[1:])


def _options(rng: random.Random, named: list[tuple[str, str]]) -> list[SelectOption]:
    return [SelectOption(new_id(rng), name, color) for name, color in named]


def build_status_property(rng: random.Random, status_type: str) -> PropertySchema:
    """The Status property: every label of the vocabulary, grouped when it is a status type."""
    options = _options(rng, [(label, status_color(label)) for label in STATUS_LABELS])
    prop = PropertySchema(
        encode_property_id(RAW_PROPERTY_IDS["Status"]), "Status", status_type, options
    )
    if status_type == "status":
        for key, name, color in STATUS_GROUPS:
            ids = [o.id for o in options if status_group(o.name) == key]
            prop.groups.append(StatusGroup(new_id(rng), key, name, color, ids))
    return prop


def build_calendar_schema(
    rng: random.Random, status_type: str, channels: tuple[str, ...]
) -> dict[str, PropertySchema]:
    """The content calendar's properties, in board order, keyed by name."""

    def simple(name: str, kind: str) -> PropertySchema:
        return PropertySchema(encode_property_id(RAW_PROPERTY_IDS[name]), name, kind)

    channel = simple("Channel", "select")
    channel.options = _options(rng, [(c, COLORS[1 + i % 9]) for i, c in enumerate(channels)])
    priority = simple("Priority", "select")
    priority.options = _options(rng, list(PRIORITIES))
    props = [
        simple("Title", "title"),
        channel,
        simple("Topic", "rich_text"),
        simple("Story Direction", "rich_text"),
        build_status_property(rng, status_type),
        priority,
        simple("Error Log", "rich_text"),
        simple("YouTube URL", "url"),
        simple("Updated", "date"),
    ]
    return {p.name: p for p in props}
