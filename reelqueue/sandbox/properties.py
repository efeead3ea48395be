"""Page property values: validate a write the way Notion does, and turn it into stored values.

Stored values are the value part of Notion's property objects (a rich-text list, an option
dict or None, a date dict or None, ...), so rendering a page is a copy.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from reelqueue.sandbox.errors import shape_error, validation_error
from reelqueue.sandbox.ids import new_id, normalize_id
from reelqueue.sandbox.schema import PropertySchema, SelectOption, next_color
from reelqueue.sandbox.store import Calendar
from reelqueue.sandbox.timestamps import normalize_date_text

MAX_TEXT_LENGTH = 2000  # counted in UTF-16 code units, as Notion counts (an emoji is two)
MAX_RICH_TEXT_ELEMENTS = 100
MAX_URL_LENGTH = 2000
MAX_OPTION_NAME_LENGTH = 100
_ANNOTATION_FLAGS = ("bold", "italic", "strikethrough", "underline", "code")


@dataclass
class PropertyWrite:
    """A validated write of one property; `new_option` is a select option it creates."""

    prop: PropertySchema
    value: Any
    new_option: SelectOption | None = None


def _utf16_length(text: str) -> int:
    """Length as Notion measures text: UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def empty_value(kind: str) -> Any:
    """The value a property of this type holds before anyone sets it."""
    if kind in ("title", "rich_text", "people"):
        return []
    if kind == "checkbox":
        return False
    return None


def rich_text(content: str, link: str | None = None) -> dict[str, Any]:
    """One rich-text element as Notion returns it."""
    return {
        "type": "text",
        "text": {"content": content, "link": {"url": link} if link else None},
        "annotations": {**dict.fromkeys(_ANNOTATION_FLAGS, False), "color": "default"},
        "plain_text": content,
        "href": link,
    }


def plain_text(value: list[dict[str, Any]]) -> str:
    """The plain text of a rich-text value: its elements' `plain_text`, joined."""
    return "".join(str(element.get("plain_text", "")) for element in value)


def parse_writes(
    calendar: Calendar, properties: Any, path: str = "body.properties"
) -> list[PropertyWrite]:
    """Validate a `properties` object of a page write; raise a 400 NotionError if any is bad.

    Nothing is applied here, so a request with one bad property changes nothing.
    """
    if not isinstance(properties, dict):
        raise shape_error(path, "an object", properties)
    writes: list[PropertyWrite] = []
    for key, raw in properties.items():
        prop = calendar.property(key)
        if prop is None:
            raise validation_error(f"{key} is not a property that exists.")
        writes.append(_parse_one(prop, raw, f"{path}.{key}", calendar.rng))
    return writes


def _parse_one(prop: PropertySchema, raw: Any, path: str, rng: random.Random) -> PropertyWrite:
    if not isinstance(raw, dict):
        raise shape_error(path, "an object", raw)
    declared = raw.get("type", prop.type)
    if declared != prop.type or prop.type not in raw:
        raise validation_error(f"{prop.name} is expected to be {prop.type}.")
    value = raw[prop.type]
    inner = f"{path}.{prop.type}"
    if prop.type in ("title", "rich_text"):
        return PropertyWrite(prop, parse_rich_text(value, inner))
    if prop.type == "select":
        return _parse_select(prop, value, inner, rng)
    if prop.type == "status":
        return PropertyWrite(prop, _parse_status(prop, value, inner))
    if prop.type == "date":
        return PropertyWrite(prop, _parse_date(value, inner))
    if prop.type == "url":
        return PropertyWrite(prop, _parse_url(value, inner))
    if prop.type == "number":
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise shape_error(inner, "a number or `null`", value)
        return PropertyWrite(prop, value)
    if prop.type == "checkbox":
        if not isinstance(value, bool):
            raise shape_error(inner, "a boolean", value)
        return PropertyWrite(prop, value)
    if prop.type == "people":
        return PropertyWrite(prop, _parse_people(value, inner))
    raise validation_error(f"{prop.name} is a {prop.type} property and cannot be written.")


def parse_rich_text(value: Any, path: str) -> list[dict[str, Any]]:
    """Rich text in a request, as Notion checks it (100 elements, 2000 UTF-16 units each)."""
    if not isinstance(value, list):
        raise shape_error(path, "an array", value)
    if len(value) > MAX_RICH_TEXT_ELEMENTS:
        raise validation_error(
            f"body failed validation: {path}.length should be ≤ `{MAX_RICH_TEXT_ELEMENTS}`, "
            f"instead was `{len(value)}`."
        )
    return [_parse_element(item, f"{path}[{i}]") for i, item in enumerate(value)]


def _parse_element(item: Any, path: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise shape_error(path, "an object", item)
    if item.get("type", "text") != "text" or not isinstance(item.get("text"), dict):
        raise shape_error(
            f"{path}.text", "an object (the sandbox writes text elements only)", item.get("text")
        )
    text = item["text"]
    content = text.get("content")
    if not isinstance(content, str):
        raise shape_error(f"{path}.text.content", "a string", content)
    if _utf16_length(content) > MAX_TEXT_LENGTH:
        raise validation_error(
            f"body failed validation: {path}.text.content.length should be ≤ "
            f"`{MAX_TEXT_LENGTH}`, instead was `{_utf16_length(content)}`."
        )
    link = text.get("link")
    url: str | None = None
    if link is not None:
        if not isinstance(link, dict) or not isinstance(link.get("url"), str):
            raise shape_error(f"{path}.text.link", "an object with a url, or `null`", link)
        url = link["url"]
        if len(link["url"]) > MAX_URL_LENGTH:
            raise validation_error(
                f"body failed validation: {path}.text.link.url.length should be ≤ "
                f"`{MAX_URL_LENGTH}`, instead was `{len(link['url'])}`."
            )
    element = rich_text(content, url)
    annotations = item.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict):
            raise shape_error(f"{path}.annotations", "an object", annotations)
        for flag in _ANNOTATION_FLAGS:
            if flag in annotations:
                if not isinstance(annotations[flag], bool):
                    raise shape_error(f"{path}.annotations.{flag}", "a boolean", annotations[flag])
                element["annotations"][flag] = annotations[flag]
        if "color" in annotations:
            if not isinstance(annotations["color"], str):
                raise shape_error(f"{path}.annotations.color", "a string", annotations["color"])
            element["annotations"]["color"] = annotations["color"]
    return element


def _option_reference(value: Any, path: str) -> tuple[str | None, str | None]:
    if not isinstance(value, dict):
        raise shape_error(path, "an object or `null`", value)
    option_id, name = value.get("id"), value.get("name")
    if option_id is not None and not isinstance(option_id, str):
        raise shape_error(f"{path}.id", "a string", option_id)
    if name is not None and not isinstance(name, str):
        raise shape_error(f"{path}.name", "a string", name)
    if option_id is None and name is None:
        raise shape_error(path, "an object with an id or a name", value)
    return option_id, name


def _parse_select(prop: PropertySchema, value: Any, path: str, rng: random.Random) -> PropertyWrite:
    if value is None:
        return PropertyWrite(prop, None)
    option_id, name = _option_reference(value, path)
    if option_id is not None:
        option = prop.option_with_id(option_id)
        if option is None:
            raise validation_error(f"Select option with id {option_id} does not exist.")
        return PropertyWrite(prop, option.value())
    assert name is not None
    option = prop.option_named(name)
    if option is not None:
        return PropertyWrite(prop, option.value())
    if not name.strip() or len(name) > MAX_OPTION_NAME_LENGTH or "," in name:
        raise validation_error(f"Invalid select option name: {name!r}.")
    created = SelectOption(new_id(rng), name, next_color(rng))
    return PropertyWrite(prop, created.value(), created)


def _parse_status(prop: PropertySchema, value: Any, path: str) -> dict[str, Any]:
    if value is None:
        raise shape_error(path, "an object", value)
    option_id, name = _option_reference(value, path)
    option = prop.option_with_id(option_id) if option_id else prop.option_named(name or "")
    if option is None:
        shown = option_id if option_id else name
        raise validation_error(f'Invalid status option. Status option "{shown}" does not exist.')
    return option.value()


def _parse_date(value: Any, path: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise shape_error(path, "an object or `null`", value)
    start = normalize_date_text(value.get("start"))
    if start is None:
        raise shape_error(f"{path}.start", "a valid ISO 8601 date string", value.get("start"))
    end_raw = value.get("end")
    end = None if end_raw is None else normalize_date_text(end_raw)
    if end_raw is not None and end is None:
        raise shape_error(f"{path}.end", "a valid ISO 8601 date string or `null`", end_raw)
    time_zone = value.get("time_zone")
    if time_zone is not None and not isinstance(time_zone, str):
        raise shape_error(f"{path}.time_zone", "a string or `null`", time_zone)
    return {"start": start, "end": end, "time_zone": time_zone}


def _parse_people(value: Any, path: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise shape_error(path, "an array", value)
    people: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        raw_id = item.get("id") if isinstance(item, dict) else None
        user_id = normalize_id(raw_id) if isinstance(raw_id, str) else None
        if user_id is None:
            raise shape_error(f"{path}[{i}].id", "a valid uuid", raw_id)
        people.append({"object": "user", "id": user_id})
    return people


def _parse_url(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise shape_error(path, "a string or `null`", value)
    if len(value) > MAX_URL_LENGTH:
        raise validation_error(
            f"body failed validation: {path}.length should be ≤ `{MAX_URL_LENGTH}`, "
            f"instead was `{len(value)}`."
        )
    return value


def commit_options(writes: list[PropertyWrite]) -> None:
    """Add the select options a validated write creates (once, however many pages it edits)."""
    for write in writes:
        if write.new_option is not None and write.prop.option_named(write.new_option.name) is None:
            write.prop.add_option(write.new_option)
