"""Data sources as Notion's API lets them change: PATCH /v1/data_sources/{id}, new schemas.

PATCH takes only the official SDK's updateDataSource keys (archived, title, icon, properties,
in_trash, parent); any other key, `description` included, is Notion's 400 "body.<key> should
be not present" (a data source's description is read-only through the API). It changes:

- the title;
- the icon (`icons.parse_icon`; `null` removes it). The sandbox's data source shares its
  title and icon with its database, as it does the title;
- `in_trash` (`archived`, its alias, before 2026-03-11): trashing or restoring the data
  source. A trashed one still answers GET, with `in_trash: true`; other work with it (edits,
  queries, new pages, edits of its pages) is a 400 saying the sandbox does not model it,
  until it is restored (the same body may restore it and edit it);
- `parent` (`{"type": "database_id", "database_id"}`): moving it to another database. An
  unknown database is Notion's 404; naming the database it is in changes nothing; another
  database is a 400 saying the sandbox does not model it (each sandbox database holds
  exactly one data source);
- the properties: a new property of a simple type (no status property: 400); renaming or
  removing (`null`) a property other than the title. A select property's `options`, when
  given, replace its list: listed options are kept (by id, or by name), new names are
  added, omitted options are removed and the pages holding one lose that value. An
  existing option's name or color cannot be changed (400). A status property is read-only
  through the API: its name, options and groups cannot be changed (400). Changing a
  property's type is refused too (Notion allows it; the sandbox has no use for it).

The request is validated in full before anything changes.

`build_schema` validates `initial_data_source.properties` of POST /v1/databases the same way:
exactly one title, no status property.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any

from reelqueue.sandbox.errors import NotionError, shape_error, validation_error
from reelqueue.sandbox.icons import parse_icon
from reelqueue.sandbox.ids import new_id, new_property_id, normalize_id
from reelqueue.sandbox.properties import empty_value, plain_text
from reelqueue.sandbox.query import trash_flag
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

STATUS_READ_ONLY = (
    "It is not possible to update the name or options of a status property via the API "
    "(property {name!r})."
)
STATUS_NOT_CREATABLE = "Creating new status database properties is currently not supported."
OPTION_FIXED = (
    "{prop}: the name and color of an existing select option cannot be updated (option {name!r})."
)
# updateDataSource's bodyParams in the official JS SDK (@notionhq/client 5.26).
DATA_SOURCE_KEYS = ("archived", "title", "icon", "properties", "in_trash", "parent")


def not_present(key: str, value: Any) -> NotionError:
    """Notion's 400 for a body key the endpoint does not take."""
    return shape_error(f"body.{key}", "not present", value)


def update_data_source(
    calendar: Calendar,
    body: dict[str, Any],
    find_database: Callable[[str], Calendar],
    *,
    archived_alias: bool = True,
) -> bool | None:
    """Validate the whole PATCH body, then apply it; raise a 400 NotionError if it is bad.

    `find_database` finds a database by id or raises Notion's 404; `archived_alias`: the
    request's Notion-Version still takes `archived` for `in_trash`. Returns the new trash
    state when the body changes it, else None.
    """
    for key, value in body.items():
        if key not in DATA_SOURCE_KEYS:
            raise not_present(key, value)
    wanted_trash = (
        trash_flag(body, archived_alias=archived_alias)
        if "in_trash" in body or "archived" in body
        else None
    )
    changes: list[Change] = []
    if "title" in body:
        changes.append(functools.partial(setattr, calendar, "title", title_text(body["title"])))
    if "icon" in body:
        changes.append(functools.partial(setattr, calendar, "icon", parse_icon(body["icon"])))
    if "parent" in body:
        _check_parent(calendar, body["parent"], find_database)
    properties = body.get("properties", {})
    if not isinstance(properties, dict):
        raise shape_error("body.properties", "an object", properties)
    for key, spec in properties.items():
        changes.extend(_property_changes(calendar, key, spec, f"body.properties.{key}"))
    if wanted_trash is not False and changes:
        refuse_in_trash(calendar, "editing")
    for change in changes:
        change()
    if wanted_trash is None or wanted_trash == calendar.data_source_in_trash:
        return None
    calendar.data_source_in_trash = wanted_trash
    return wanted_trash


def refuse_in_trash(calendar: Calendar, what: str) -> None:
    """A 400 for `what` (querying, editing ...) done to a data source in the trash.

    Notion documents only that a trashed data source answers GET with `in_trash: true`; what
    it answers to anything else is not documented, so the sandbox says it does not model it.
    """
    if calendar.data_source_in_trash:
        raise validation_error(
            f"The data source {calendar.data_source_id} is in the trash, and the sandbox does "
            f"not model {what} a data source in the trash. Restore it first: PATCH "
            f"/v1/data_sources/{calendar.data_source_id} with in_trash false."
        )


def _check_parent(calendar: Calendar, raw: Any, find_database: Callable[[str], Calendar]) -> None:
    """Moving a data source: to the database it is in is a no-op; elsewhere is not modelled."""
    expected = "an object with type database_id and a database_id"
    if not isinstance(raw, dict) or set(raw) - {"type", "database_id"}:
        raise shape_error("body.parent", expected, raw)
    if raw.get("type", "database_id") != "database_id":
        raise shape_error("body.parent.type", '`"database_id"`', raw.get("type"))
    database_id = raw.get("database_id")
    if not isinstance(database_id, str) or normalize_id(database_id) is None:
        raise shape_error("body.parent.database_id", "a valid uuid", database_id)
    target = find_database(database_id)
    if target.database_id != calendar.database_id:
        raise validation_error(
            "body.parent: the sandbox does not model moving a data source to another database "
            "(each sandbox database holds exactly one data source)."
        )


def build_schema(raw: Any, rng: random.Random, path: str) -> dict[str, PropertySchema]:
    """The schema of a new data source from property configurations; a 400 if any is bad."""
    if not isinstance(raw, dict):
        raise shape_error(path, "an object", raw)
    schema: dict[str, PropertySchema] = {}
    taken: set[str] = set()
    for name, spec in raw.items():
        where = f"{path}.{name}"
        if not name.strip():
            raise shape_error(where, "a property with a non-empty name", name)
        if not isinstance(spec, dict):
            raise shape_error(where, "an object", spec)
        kind = _declared_kind(spec, where)
        if kind == "status":
            raise validation_error(STATUS_NOT_CREATABLE)
        if kind != "title" and kind not in CREATABLE_TYPES:
            raise validation_error(
                f"{name}: the sandbox can create properties of type title, "
                f"{', '.join(CREATABLE_TYPES)}."
            )
        if kind == "title" and any(p.type == "title" for p in schema.values()):
            raise validation_error("A data source can have only one title property.")
        prop_id = "title" if kind == "title" else new_property_id(rng, taken)
        taken.add(prop_id)
        prop = PropertySchema(prop_id, name, kind)
        for change in _new_options(prop, spec.get(kind), f"{where}.{kind}", rng):
            change()
        schema[name] = prop
    if not any(p.type == "title" for p in schema.values()):
        raise validation_error("Title is not provided: a data source needs one title property.")
    return schema


def title_text(raw: Any, path: str = "body.title") -> str:
    """The plain text of a rich-text title in a request; a 400 if it is not one."""
    if not isinstance(raw, list) or not all(
        isinstance(e, dict) and isinstance(e.get("text"), dict) for e in raw
    ):
        raise shape_error(path, "an array of rich text", raw)
    parts = [{"plain_text": str(e["text"].get("content", ""))} for e in raw]
    return plain_text(parts)


def _declared_kind(spec: dict[str, Any], path: str) -> str:
    """The type a property configuration names, by `type` or by its one type key."""
    kinds = [k for k in spec if k in (*WRITABLE_TYPES, "title")]
    declared = spec.get("type")
    kind = declared if declared is not None else (kinds[0] if len(kinds) == 1 else None)
    if not isinstance(kind, str) or any(k != kind for k in kinds):
        raise shape_error(path, "a property configuration with one type", spec)
    return kind


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
    if existing is None:
        kind = _declared_kind(spec, path)
        if kind == "status":
            raise validation_error(STATUS_NOT_CREATABLE)
        if kind not in CREATABLE_TYPES:
            raise validation_error(
                f"{key}: the sandbox can add properties of type {', '.join(CREATABLE_TYPES)}."
            )
        prop = PropertySchema(new_property_id(calendar.rng, _ids(calendar)), key, kind)
        changes: list[Change] = [functools.partial(_add_property, calendar, prop)]
        changes.extend(_new_options(prop, spec.get(kind), f"{path}.{kind}", calendar.rng))
        return changes
    kinds = [k for k in spec if k in WRITABLE_TYPES]
    declared = spec.get("type")
    if (declared is not None and declared != existing.type) or any(
        k != existing.type for k in kinds
    ):
        raise validation_error(f"{existing.name}: changing a property's type is not supported.")
    new_name = spec.get("name", existing.name)
    config = spec.get(existing.type)
    if existing.type == "status" and (
        new_name != existing.name or (isinstance(config, dict) and config)
    ):
        raise validation_error(STATUS_READ_ONLY.format(name=existing.name))
    changes = []
    if existing.type == "select" and config is not None:
        changes.extend(_replace_options(calendar, existing, config, f"{path}.select"))
    if new_name != existing.name:
        if not isinstance(new_name, str) or not new_name.strip():
            raise shape_error(f"{path}.name", "a non-empty string", new_name)
        if new_name in calendar.schema:
            raise validation_error(f"A property named {new_name} already exists.")
        changes.append(functools.partial(_rename_property, calendar, existing, new_name))
    return changes


def _option_list(config: Any, path: str) -> list[dict[str, Any]] | None:
    """The `options` of a select configuration (None when not given), shape-checked."""
    if not isinstance(config, dict):
        raise shape_error(path, "an object", config)
    options = config.get("options")
    if options is None:
        return None
    if not isinstance(options, list):
        raise shape_error(f"{path}.options", "an array", options)
    for i, option in enumerate(options):
        where = f"{path}.options[{i}]"
        if not isinstance(option, dict):
            raise shape_error(where, "an object", option)
        color = option.get("color")
        if color is not None and color not in COLORS:
            raise shape_error(f"{where}.color", f"one of {', '.join(COLORS)}", color)
        if option.get("id") is not None and not isinstance(option["id"], str):
            raise shape_error(f"{where}.id", "a string", option["id"])
    return options


def _new_options(prop: PropertySchema, config: Any, path: str, rng: random.Random) -> list[Change]:
    """The options of a property being created: names (and colors) only."""
    if prop.type != "select" or config is None:
        return []
    options = _option_list(config, path) or []
    changes: list[Change] = []
    planned: set[str] = set()
    for i, option in enumerate(options):
        where = f"{path}.options[{i}]"
        if option.get("id") is not None:
            raise shape_error(f"{where}.id", "absent for a new property", option["id"])
        name = _name(option.get("name"), where)
        if name in planned:
            raise validation_error(f"{prop.name}: the option {name!r} is listed twice.")
        planned.add(name)
        new = SelectOption(new_id(rng), name, option.get("color") or next_color(rng))
        changes.append(functools.partial(prop.add_option, new))
    return changes


def _replace_options(
    calendar: Calendar, prop: PropertySchema, config: Any, path: str
) -> list[Change]:
    """The listed options become the property's list; the others are removed."""
    options = _option_list(config, path)
    if options is None:
        return []
    kept: list[SelectOption] = []
    for i, option in enumerate(options):
        where = f"{path}.options[{i}]"
        name, option_id, color = option.get("name"), option.get("id"), option.get("color")
        if option_id is not None:
            known = prop.option_with_id(option_id)
            if known is None:
                raise validation_error(f"{prop.name}: no option has the id {option_id}.")
            if name is not None and name != known.name:
                raise validation_error(OPTION_FIXED.format(prop=prop.name, name=known.name))
        else:
            named = _name(name, where)
            known = prop.option_named(named) or SelectOption(
                new_id(calendar.rng), named, color or next_color(calendar.rng)
            )
        if color is not None and color != known.color:
            raise validation_error(OPTION_FIXED.format(prop=prop.name, name=known.name))
        if any(k.name == known.name for k in kept):
            raise validation_error(f"{prop.name}: the option {known.name!r} is listed twice.")
        kept.append(known)
    return [functools.partial(_set_options, list(calendar.pages.values()), prop, kept)]


def _set_options(pages: list[Page], prop: PropertySchema, options: list[SelectOption]) -> None:
    prop.options = options
    ids = {o.id for o in options}
    for page in pages:
        value = page.values.get(prop.name)
        if isinstance(value, dict) and value.get("id") not in ids:
            page.values[prop.name] = None


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
