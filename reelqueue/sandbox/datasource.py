"""PATCH /v1/data_sources/{id}: add properties and options to the calendar, as Notion allows.

Supported: a new property of a simple type; new select and status options (a new status
option joins the To-do group); renaming a property or a select option; removing a property
(`null`) other than the title; a new title. Refused with a 400, as through Notion's API:
renaming or regrouping status options, creating a status property. Changing a property's
type is refused too (Notion allows it; the sandbox has no use for it).
The request is validated in full before anything changes.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any

from reelqueue.sandbox.errors import shape_error, validation_error
from reelqueue.sandbox.ids import new_id, new_property_id
from reelqueue.sandbox.properties import empty_value, plain_text
from reelqueue.sandbox.schema import (
    COLORS,
    CREATABLE_TYPES,
    WRITABLE_TYPES,
    PropertySchema,
    SelectOption,
    next_color,
)
from reelqueue.sandbox.store import Calendar, Page

Change = Callable[[], None]


def update_data_source(calendar: Calendar, body: dict[str, Any]) -> None:
    """Validate the whole PATCH body, then apply it; raise a 400 NotionError if it is bad."""
    changes: list[Change] = []
    if "title" in body:
        changes.append(functools.partial(setattr, calendar, "title", _title(body["title"])))
    properties = body.get("properties", {})
    if not isinstance(properties, dict):
        raise shape_error("body.properties", "an object", properties)
    for key, spec in properties.items():
        changes.extend(_property_changes(calendar, key, spec, f"body.properties.{key}"))
    for change in changes:
        change()


def _title(raw: Any) -> str:
    if not isinstance(raw, list) or not all(
        isinstance(e, dict) and isinstance(e.get("text"), dict) for e in raw
    ):
        raise shape_error("body.title", "an array of rich text", raw)
    parts = [{"plain_text": str(e["text"].get("content", ""))} for e in raw]
    return plain_text(parts)


def _property_changes(calendar: Calendar, key: str, spec: Any, path: str) -> list[Change]:
    existing = calendar.property(key)
    if spec is None:
        if existing is None:
            raise validation_error(f"{key} is not a property that exists.")
        if existing.type == "title":
            raise validation_error("The title property cannot be removed.")
        return [functools.partial(_remove_property, calendar, existing)]
    if not isinstance(spec, dict):
        raise shape_error(path, "an object or `null`", spec)
    kinds = [k for k in spec if k in WRITABLE_TYPES]
    declared = spec.get("type")
    if existing is None:
        kind = declared if declared is not None else (kinds[0] if len(kinds) == 1 else None)
        if kind not in CREATABLE_TYPES or any(k != kind for k in kinds):
            raise validation_error(
                f"{key}: the sandbox can add properties of type {', '.join(CREATABLE_TYPES)}."
            )
        prop = PropertySchema(new_property_id(calendar.rng, _ids(calendar)), key, str(kind))
        changes: list[Change] = [functools.partial(_add_property, calendar, prop)]
        changes.extend(
            _option_changes(prop, spec.get(prop.type), f"{path}.{kind}", calendar.rng, [])
        )
        return changes
    if (declared is not None and declared != existing.type) or any(
        k != existing.type for k in kinds
    ):
        raise validation_error(f"{existing.name}: changing a property's type is not supported.")
    pages = list(calendar.pages.values())
    changes = _option_changes(
        existing, spec.get(existing.type), f"{path}.{existing.type}", calendar.rng, pages
    )
    new_name = spec.get("name", existing.name)
    if new_name != existing.name:
        if not isinstance(new_name, str) or not new_name.strip():
            raise shape_error(f"{path}.name", "a non-empty string", new_name)
        if new_name in calendar.schema:
            raise validation_error(f"A property named {new_name} already exists.")
        changes.append(functools.partial(_rename_property, calendar, existing, new_name))
    return changes


def _option_changes(
    prop: PropertySchema, config: Any, path: str, rng: random.Random, pages: list[Page]
) -> list[Change]:
    if prop.type not in ("select", "status") or config is None:
        return []
    if not isinstance(config, dict):
        raise shape_error(path, "an object", config)
    if prop.type == "status" and "groups" in config:
        raise validation_error("Status groups cannot be changed through the API.")
    options = config.get("options", [])
    if not isinstance(options, list):
        raise shape_error(f"{path}.options", "an array", options)
    changes: list[Change] = []
    planned: set[str] = set()
    for i, option in enumerate(options):
        where = f"{path}.options[{i}]"
        if not isinstance(option, dict):
            raise shape_error(where, "an object", option)
        name, option_id, color = option.get("name"), option.get("id"), option.get("color")
        if color is not None and color not in COLORS:
            raise shape_error(f"{where}.color", f"one of {', '.join(COLORS)}", color)
        if option_id is not None:
            known = prop.option_with_id(option_id) if isinstance(option_id, str) else None
            if known is None:
                raise validation_error(f"{prop.name}: no option has the id {option_id}.")
            if name is not None and name != known.name:
                if prop.type == "status":
                    raise validation_error("Status option names cannot be changed through the API.")
                renamed = _name(name, where)
                changes.append(functools.partial(_rename_option, pages, prop, known, renamed))
            continue
        name = _name(name, where)
        if prop.option_named(name) is None and name not in planned:
            planned.add(name)
            new = SelectOption(new_id(rng), name, color or next_color(rng))
            changes.append(functools.partial(prop.add_option, new))
    return changes


def _rename_option(
    pages: list[Page], prop: PropertySchema, option: SelectOption, name: str
) -> None:
    option.name = name
    for page in pages:
        value = page.values.get(prop.name)
        if isinstance(value, dict) and value.get("id") == option.id:
            page.values[prop.name] = option.value()


def _name(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 100 or "," in raw:
        raise shape_error(f"{where}.name", "a non-empty name without commas", raw)
    return raw


def _ids(calendar: Calendar) -> set[str]:
    return {p.id for p in calendar.schema.values()}


def _add_property(calendar: Calendar, prop: PropertySchema) -> None:
    calendar.schema[prop.name] = prop
    for page in calendar.pages.values():
        page.values[prop.name] = empty_value(prop.type)


def _remove_property(calendar: Calendar, prop: PropertySchema) -> None:
    del calendar.schema[prop.name]
    for page in calendar.pages.values():
        page.values.pop(prop.name, None)


def _rename_property(calendar: Calendar, prop: PropertySchema, new_name: str) -> None:
    old_name = prop.name
    prop.name = new_name
    calendar.schema = {(new_name if k == old_name else k): p for k, p in calendar.schema.items()}
    for page in calendar.pages.values():
        page.values[new_name] = page.values.pop(old_name, empty_value(prop.type))
