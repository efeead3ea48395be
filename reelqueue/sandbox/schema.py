"""The content calendar's schema: its properties, the board's status options, and colors."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
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
    """The status group (to_do, in_progress, complete) a label of the default board belongs to."""
    if label in _TO_DO:
        return "to_do"
    if label in _COMPLETE or label.endswith("Error"):
        return "complete"
    return "in_progress"


# The Status options of a board, (name, group id) in board order; group ids as STATUS_GROUPS.
StatusOptions = tuple[tuple[str, str], ...]

DEFAULT_STATUS_OPTIONS: StatusOptions = tuple(
    (label, status_group(label)) for label in STATUS_LABELS
)
MAX_OPTION_NAME = 100


def check_status_options(options: Sequence[tuple[str, str]]) -> StatusOptions:
    """The options as given, or ValueError naming the first problem (names as Notion allows)."""
    groups = [key for key, _, _ in STATUS_GROUPS]
    if not options:
        raise ValueError("status_options must list at least one option")
    seen: set[str] = set()
    for index, (name, group) in enumerate(options):
        where = f"status_options[{index}]"
        if not name.strip() or len(name) > MAX_OPTION_NAME or "," in name:
            raise ValueError(
                f"{where}.name must be a non-empty name of at most {MAX_OPTION_NAME} characters "
                f"without commas, not {name!r}"
            )
        if name in seen:
            raise ValueError(f"{where}.name: the option {name!r} is listed twice")
        seen.add(name)
        if group not in groups:
            raise ValueError(f"{where}.group must be one of {groups}, not {group!r}")
    return tuple((name, group) for name, group in options)


def parse_status_options(data: Any) -> StatusOptions:
    """The `status_options` of a reset body (`[{"name", "group"}, ...]`), or ValueError."""
    if not isinstance(data, list):
        raise ValueError('status_options must be a list of {"name", "group"} objects')
    pairs: list[tuple[str, str]] = []
    for index, option in enumerate(data):
        if (
            not isinstance(option, dict)
            or set(option) != {"name", "group"}
            or not isinstance(option["name"], str)
            or not isinstance(option["group"], str)
        ):
            raise ValueError(
                f'status_options[{index}] must be an object {{"name": text, "group": text}}, '
                f"not {option!r}"
            )
        pairs.append((option["name"], option["group"]))
    return check_status_options(pairs)


def status_options(groups_by_label: Mapping[str, str]) -> StatusOptions:
    """Status options from each label's group, named as Notion shows it ("To-do") or by id."""
    ids = {name: key for key, name, _ in STATUS_GROUPS} | {key: key for key, _, _ in STATUS_GROUPS}
    unknown = sorted({g for g in groups_by_label.values() if g not in ids})
    if unknown:
        raise ValueError(f"unknown status groups {unknown}; use one of {sorted(ids)}")
    return check_status_options([(label, ids[g]) for label, g in groups_by_label.items()])


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


def build_status_property(
    rng: random.Random, status_type: str, board: StatusOptions = DEFAULT_STATUS_OPTIONS
) -> PropertySchema:
    """The Status property with the board's options, grouped when it is a status type."""
    options = _options(rng, [(name, status_color(name)) for name, _ in board])
    prop = PropertySchema(
        encode_property_id(RAW_PROPERTY_IDS["Status"]), "Status", status_type, options
    )
    if status_type == "status":
        for key, name, color in STATUS_GROUPS:
            ids = [o.id for o, (_, group) in zip(options, board, strict=True) if group == key]
            prop.groups.append(StatusGroup(new_id(rng), key, name, color, ids))
    return prop


def first_status(prop: PropertySchema, name: str) -> SelectOption:
    """The option called `name`, else the board's first To-do option (its first when none)."""
    to_do = prop.groups[0].option_ids if prop.groups else []
    named = prop.option_named(name)
    return named or next((o for o in prop.options if o.id in to_do), prop.options[0])


def build_calendar_schema(
    rng: random.Random,
    status_type: str,
    channels: tuple[str, ...],
    board: StatusOptions = DEFAULT_STATUS_OPTIONS,
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
        build_status_property(rng, status_type, board),
        priority,
        simple("Error Log", "rich_text"),
        simple("YouTube URL", "url"),
        simple("Updated", "date"),
    ]
    return {p.name: p for p in props}
