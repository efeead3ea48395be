"""The calendar's schema: check a data source has what reelqueue needs, and add what is missing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from reelqueue.errors import UserError
from reelqueue.statuses import PRIORITIES, STATUS_GROUPS, StatusTable

__all__ = [
    "CalendarSchema",
    "PropertyNames",
    "SchemaProblem",
    "SchemaReport",
    "check_schema",
    "refresh_schema",
    "setup_patch",
    "status_instructions",
]

StatusType = Literal["status", "select"]


@dataclass(frozen=True)
class PropertyNames:
    """The calendar's property names (the title property's name is read from the schema)."""

    title: str = "Title"
    channel: str = "Channel"
    topic: str = "Topic"
    story_direction: str = "Story Direction"
    status: str = "Status"
    priority: str = "Priority"
    error_log: str = "Error Log"
    youtube_url: str = "YouTube URL"
    updated: str = "Updated"


class SchemaProblem(UserError):
    """A data source lacks properties or options reelqueue needs."""


@dataclass(frozen=True)
class _Wanted:
    name: str
    types: tuple[str, ...]
    required: bool = True
    field: str = ""


def _wanted(names: PropertyNames) -> list[_Wanted]:
    return [
        _Wanted(names.channel, ("select",), field="channel"),
        _Wanted(names.topic, ("rich_text",), field="topic"),
        _Wanted(names.story_direction, ("rich_text",), required=False, field="story_direction"),
        _Wanted(names.status, ("status", "select"), field="status"),
        _Wanted(names.priority, ("select",), required=False, field="priority"),
        _Wanted(names.error_log, ("rich_text",), field="error_log"),
        _Wanted(names.youtube_url, ("url",), field="youtube_url"),
        _Wanted(names.updated, ("date",), required=False, field="updated"),
    ]


@dataclass(frozen=True)
class CalendarSchema:
    """What push-back and ingest need to know of a data source's schema."""

    data_source_id: str
    names: PropertyNames
    status_type: StatusType
    property_ids: dict[str, str]
    problems: tuple[str, ...] = ()
    unusable: frozenset[str] = frozenset()

    def has(self, name: str) -> bool:
        """Whether a property exists with a usable type (a required one may vanish at run time)."""
        return name in self.property_ids

    def lacks(self, wanted: Iterable[str]) -> bool:
        """Whether any of these fields (`status`, `error_log`, ...) is missing or mistyped now."""
        return any(name in self.unusable for name in wanted)

    def key(self, name: str) -> str:
        """How to address a property in filters and writes: its id, which survives renames."""
        return self.property_ids.get(name) or name

    def by_id(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        """A `properties` body keyed by property ids instead of names."""
        return {self.key(name): value for name, value in properties.items()}

    def keyed(self, page: dict[str, Any]) -> dict[str, Any]:
        """The page with its properties keyed by the names this schema knows (matched by id).

        A property renamed in Notion since the schema was read keeps being found under the
        name reelqueue knows it by; a property matched by id wins over one merely named alike.
        """
        properties = page.get("properties")
        if not isinstance(properties, dict):
            return page
        names_by_id = {pid: name for name, pid in self.property_ids.items() if pid}
        rekeyed: dict[str, Any] = {}
        matched: dict[str, Any] = {}
        for name, value in properties.items():
            pid = value.get("id") if isinstance(value, dict) else None
            known = names_by_id.get(pid) if isinstance(pid, str) else None
            if known is None:
                rekeyed[name] = value
            else:
                matched[known] = value
        return {**page, "properties": rekeyed | matched}


@dataclass
class SchemaReport:
    """The result of checking one data source against what reelqueue needs."""

    data_source_id: str
    title_name: str | None
    missing: list[str] = field(default_factory=list)
    missing_optional: list[str] = field(default_factory=list)
    wrong_type: list[str] = field(default_factory=list)
    missing_status_options: list[str] = field(default_factory=list)
    missing_select_options: dict[str, list[str]] = field(default_factory=dict)
    status_type: StatusType = "status"
    property_ids: dict[str, str] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        """What blocks reelqueue from running on this data source, in words."""
        found = [f"{name} is missing" for name in self.missing]
        found += self.wrong_type
        if self.title_name is None:
            found.append("it has no title property")
        if self.missing_status_options:
            found.append("Status lacks the options " + ", ".join(self.missing_status_options))
        return found

    @property
    def gaps(self) -> list[str]:
        """Everything reelqueue wants and the data source lacks, optional parts included."""
        found = self.problems
        found += [f"{name} is missing (optional)" for name in self.missing_optional]
        found += [
            f"{name} lacks the options " + ", ".join(absent)
            for name, absent in self.missing_select_options.items()
        ]
        return found

    @property
    def fixable(self) -> bool:
        """Whether `reelqueue notion setup` can repair everything found."""
        return not self.wrong_type and self.title_name is not None

    def schema(self, names: PropertyNames) -> CalendarSchema:
        """The usable schema; raises SchemaProblem naming every problem and the fix."""
        if self.problems:
            if not self.fixable:
                fix = "change those properties' types in Notion, then run `reelqueue notion setup`"
            elif self.status_type == "status" and self.missing_status_options:
                fix = (
                    "run `reelqueue notion setup`: it adds what Notion's API can add and names "
                    "the Status options to add by hand"
                )
            else:
                fix = "run `reelqueue notion setup` to add them"
            raise SchemaProblem(
                f"data source {self.data_source_id}: " + "; ".join(self.problems) + f"; {fix}"
            )
        assert self.title_name is not None
        resolved = PropertyNames(**{**vars(names), "title": self.title_name})
        return CalendarSchema(
            data_source_id=self.data_source_id,
            names=resolved,
            status_type=self.status_type,
            property_ids=dict(self.property_ids),
        )


def _option_names(prop: dict[str, Any]) -> set[str]:
    body = prop.get(prop.get("type", ""), {})
    options = body.get("options", []) if isinstance(body, dict) else []
    return {o.get("name", "") for o in options if isinstance(o, dict)}


def check_schema(
    data_source: dict[str, Any],
    names: PropertyNames,
    status_labels: list[str],
    channel_ids: list[str],
) -> SchemaReport:
    """Compare a data source object (GET /v1/data_sources/{id}) with what reelqueue needs."""
    properties: dict[str, Any] = data_source.get("properties") or {}
    title_name = next(
        (
            name
            for name, p in properties.items()
            if isinstance(p, dict) and p.get("type") == "title"
        ),
        None,
    )
    report = SchemaReport(data_source_id=str(data_source.get("id", "")), title_name=title_name)
    if title_name is not None:
        report.property_ids[title_name] = str(properties[title_name].get("id", ""))
    for want in _wanted(names):
        prop = properties.get(want.name)
        if not isinstance(prop, dict):
            (report.missing if want.required else report.missing_optional).append(want.name)
            continue
        kind = prop.get("type")
        if kind not in want.types:
            expected = " or ".join(want.types)
            report.wrong_type.append(f"{want.name} is of type {kind}, expected {expected}")
            continue
        report.property_ids[want.name] = str(prop.get("id", ""))
        if want.name == names.status:
            report.status_type = "status" if kind == "status" else "select"
            report.missing_status_options = [
                label for label in status_labels if label not in _option_names(prop)
            ]
        elif want.name == names.channel:
            absent = [c for c in channel_ids if c not in _option_names(prop)]
            if absent:
                report.missing_select_options[want.name] = absent
        elif want.name == names.priority:
            absent = [p for p in PRIORITIES if p not in _option_names(prop)]
            if absent:
                report.missing_select_options[want.name] = absent
    return report


def _options(labels: list[str]) -> dict[str, Any]:
    return {"options": [{"name": label} for label in labels]}


def setup_patch(
    report: SchemaReport,
    names: PropertyNames,
    status_labels: list[str],
    channel_ids: list[str],
    existing: dict[str, Any],
) -> dict[str, Any]:
    """The `properties` body of a data source PATCH adding what the API lets reelqueue add.

    A PATCH listing a select's options replaces the list, so the existing ones are listed
    too (by id and name). A missing Status is created as a select; the options of a
    `status`-type Status are left out, as the API cannot change them (see
    `status_instructions`).
    """
    patch: dict[str, Any] = {}
    creators: dict[str, dict[str, Any]] = {
        names.channel: {"select": _options(channel_ids)},
        names.topic: {"rich_text": {}},
        names.story_direction: {"rich_text": {}},
        names.status: {"select": _options(status_labels)},
        names.priority: {"select": _options(list(PRIORITIES))},
        names.error_log: {"rich_text": {}},
        names.youtube_url: {"url": {}},
        names.updated: {"date": {}},
    }
    for name in [*report.missing, *report.missing_optional]:
        patch[name] = creators[name]
    additions = dict(report.missing_select_options)
    if report.missing_status_options and report.status_type == "select":
        additions[names.status] = report.missing_status_options
    for name, absent in additions.items():
        current = existing.get(name, {}).get("select", {}).get("options", [])
        kept = [
            {key: o[key] for key in ("id", "name") if key in o}
            for o in current
            if isinstance(o, dict) and ("id" in o or "name" in o)
        ]
        patch[name] = {"select": {"options": kept + _options(absent)["options"]}}
    return patch


def status_instructions(
    report: SchemaReport, names: PropertyNames, table: StatusTable
) -> list[str]:
    """What to add by hand to a `status`-type Status, which Notion's API cannot change.

    One line per Notion status group (To-do, In progress, Complete) naming the options
    to add there, in pipeline order; no lines when nothing is missing or Status is a select.
    """
    if report.status_type != "status" or not report.missing_status_options:
        return []
    by_group: dict[str, list[str]] = {group: [] for group in STATUS_GROUPS}
    for label in report.missing_status_options:
        by_group[table.group(label)].append(label)
    lines = [
        f"data source {report.data_source_id}: {names.status} is a status property, whose "
        "options Notion's API cannot change; in Notion, open the calendar, edit the "
        f"{names.status} property and add these options, each in its group:"
    ]
    lines += [f"  {group}: " + ", ".join(labels) for group, labels in by_group.items() if labels]
    return lines


def _fix_options(want: _Wanted, labels: list[str], channels: list[str]) -> str:
    """The options a property must hold, in words (empty when it has none to hold)."""
    if want.field == "status" and labels:
        return " with the options " + ", ".join(labels)
    if want.field == "channel" and channels:
        return " with the options " + ", ".join(channels)
    return ""


def _resolve_names(
    current: CalendarSchema, properties: Mapping[str, Any], configured: PropertyNames
) -> PropertyNames:
    """Each field's name now: followed by id, else the name it had, else the configured one."""
    name_of_id = {str(p.get("id")): name for name, p in properties.items() if isinstance(p, dict)}
    resolved: dict[str, str] = {}
    for item in fields(PropertyNames):
        before = getattr(current.names, item.name)
        pid = current.property_ids.get(before)
        if pid and pid in name_of_id:
            resolved[item.name] = name_of_id[pid]
        elif before in properties or getattr(configured, item.name) not in properties:
            resolved[item.name] = before
        else:
            resolved[item.name] = getattr(configured, item.name)
    return PropertyNames(**resolved)


def refresh_schema(
    current: CalendarSchema,
    data_source: dict[str, Any],
    status_labels: list[str],
    channel_ids: list[str],
    configured: PropertyNames | None = None,
) -> CalendarSchema:
    """The schema as Notion shows it now, following renamed properties by their ids.

    A required property that was removed or changed type is not an error here: the
    schema lists it in `unusable` and says in `problems` what to do, so reads and writes
    of that field can wait while everything else keeps working.
    """
    properties: dict[str, Any] = data_source.get("properties") or {}
    names = _resolve_names(current, properties, configured or PropertyNames())
    source = current.data_source_id
    title = next(
        (n for n, p in properties.items() if isinstance(p, dict) and p.get("type") == "title"),
        current.names.title,
    )
    names = PropertyNames(**{**vars(names), "title": title})
    ids: dict[str, str] = {}
    if isinstance(properties.get(title), dict):
        ids[title] = str(properties[title].get("id", ""))
    problems: list[str] = []
    unusable: set[str] = set()
    status_type = current.status_type
    for want in _wanted(names):
        prop = properties.get(want.name)
        kind = prop.get("type") if isinstance(prop, dict) else None
        types = " or ".join(want.types)
        options = _fix_options(want, status_labels, channel_ids)
        if isinstance(prop, dict) and kind in want.types:
            ids[want.name] = str(prop.get("id", ""))
            if want.field == "status":
                status_type = "status" if kind == "status" else "select"
            continue
        if not want.required:
            continue
        unusable.add(want.field)
        if prop is None:
            problems.append(
                f"property {want.name} was removed from data source {source}: add a {want.name} "
                f"property of type {types}{options}, or run `reelqueue notion setup`"
            )
        else:
            problems.append(
                f"property {want.name} of data source {source} is now of type {kind}, and "
                f"reelqueue needs {types}: change its type back in Notion, or rename it and add "
                f"a {want.name} property of type {types}{options}"
            )
    if "status" not in unusable:
        present = _option_names(properties[names.status])
        absent = [label for label in status_labels if label not in present]
        if absent:
            problems.append(
                f"property {names.status} of data source {source} lacks the options "
                + ", ".join(absent)
                + ": add them in Notion, or run `reelqueue notion setup`"
            )
    return CalendarSchema(
        data_source_id=source,
        names=names,
        status_type=status_type,
        property_ids=ids,
        problems=tuple(problems),
        unusable=frozenset(unusable),
    )
