"""Data source query filters and sorts: validated like Notion's, compiled to Python callables.

Text conditions `contains`, `does_not_contain`, `starts_with` and `ends_with` ignore case;
`equals` is exact. Timestamp filters compare the minute-floored times Notion shows, so an
`after` the exact moment of a poll misses edits made later in that same minute, as it does
against Notion.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from reelqueue.sandbox.errors import shape_error, validation_error
from reelqueue.sandbox.ids import normalize_id
from reelqueue.sandbox.properties import plain_text
from reelqueue.sandbox.schema import PropertySchema
from reelqueue.sandbox.store import Calendar, Page
from reelqueue.sandbox.timestamps import ONE_DAY, floor_minute, parse_date_or_datetime

Predicate = Callable[[Page], bool]
SortKey = Callable[[Page], tuple[Any, ...]]

TEXT_OPERATORS = (
    "equals",
    "does_not_equal",
    "contains",
    "does_not_contain",
    "starts_with",
    "ends_with",
)
OPTION_OPERATORS = ("equals", "does_not_equal")
PEOPLE_OPERATORS = ("contains", "does_not_contain")
NUMBER_OPERATORS = (
    "equals",
    "does_not_equal",
    "greater_than",
    "less_than",
    "greater_than_or_equal_to",
    "less_than_or_equal_to",
)
DATE_OPERATORS = ("equals", "before", "after", "on_or_before", "on_or_after")
RELATIVE_DATE_OPERATORS = {
    "past_week": -7,
    "past_month": -30,
    "past_year": -365,
    "next_week": 7,
    "next_month": 30,
    "next_year": 365,
}
EMPTINESS = ("is_empty", "is_not_empty")
TIMESTAMPS = ("created_time", "last_edited_time")
FILTER_KEYS_FOR_TYPE: dict[str, tuple[str, ...]] = {
    "title": ("title", "rich_text"),
    "rich_text": ("rich_text", "title"),
    "url": ("url", "rich_text"),
    "select": ("select",),
    "status": ("status",),
    "checkbox": ("checkbox",),
    "number": ("number",),
    "date": ("date",),
    "people": ("people",),
}
FILTER_TYPES = (
    "title",
    "rich_text",
    "url",
    "select",
    "status",
    "checkbox",
    "number",
    "date",
    "multi_select",
    "people",
    "files",
    "relation",
    "formula",
    "rollup",
    "unique_id",
    "email",
    "phone_number",
    "created_time",
    "last_edited_time",
)


def compile_filter(
    raw: Any, calendar: Calendar, now: datetime, path: str = "body.filter"
) -> Predicate:
    """A predicate for `filter`; raise a 400 NotionError for what Notion would reject."""
    if not isinstance(raw, dict):
        raise shape_error(path, "an object", raw)
    for compound in ("and", "or"):
        if compound in raw:
            if len(raw) != 1 or not isinstance(raw[compound], list):
                raise shape_error(f"{path}.{compound}", "an array of filters", raw[compound])
            parts = [
                compile_filter(part, calendar, now, f"{path}.{compound}[{i}]")
                for i, part in enumerate(raw[compound])
            ]
            if compound == "and":
                return lambda page: all(part(page) for part in parts)
            return lambda page: any(part(page) for part in parts)
    if "timestamp" in raw:
        return _timestamp_filter(raw, now, path)
    if "property" in raw:
        return _property_filter(raw, calendar, now, path)
    raise shape_error(path, "an object with `property`, `timestamp`, `and` or `or`", raw)


def _timestamp_filter(raw: dict[str, Any], now: datetime, path: str) -> Predicate:
    name = raw["timestamp"]
    if name not in TIMESTAMPS or not isinstance(raw.get(name), dict):
        raise shape_error(
            f"{path}.timestamp",
            "`created_time` or `last_edited_time` with a condition of the same name",
            name,
        )
    test = _date_condition(raw[name], now, f"{path}.{name}")

    def matches(page: Page) -> bool:
        moment = page.created_time if name == "created_time" else page.last_edited_time
        return test(floor_minute(moment))

    return matches


def _property_filter(
    raw: dict[str, Any], calendar: Calendar, now: datetime, path: str
) -> Predicate:
    key = raw["property"]
    if not isinstance(key, str):
        raise shape_error(f"{path}.property", "a string", key)
    prop = calendar.property(key)
    if prop is None:
        raise validation_error(f"Could not find property with name or id: {key}")
    kinds = [k for k in raw if k not in ("property", "type")]
    if len(kinds) != 1 or kinds[0] not in FILTER_TYPES:
        raise shape_error(path, "a property filter with one condition type", raw)
    kind = kinds[0]
    if kind not in FILTER_KEYS_FOR_TYPE.get(prop.type, ()):
        raise validation_error(f"database property {prop.type} does not match filter {kind}")
    condition = raw[kind]
    inner = f"{path}.{kind}"
    name = prop.name
    if prop.type in ("title", "rich_text", "url"):
        text_test = _text_condition(condition, inner)
        return lambda page: text_test(_text_of(page.values.get(name)))
    if prop.type in ("select", "status"):
        option_test = _option_condition(condition, inner)
        return lambda page: option_test(page.values.get(name))
    if prop.type == "checkbox":
        check_test = _checkbox_condition(condition, inner)
        return lambda page: check_test(bool(page.values.get(name)))
    if prop.type == "number":
        number_test = _number_condition(condition, inner)
        return lambda page: number_test(page.values.get(name))
    if prop.type == "people":
        people_test = _people_condition(condition, inner)
        return lambda page: people_test([p["id"] for p in page.values.get(name) or []])
    date_test = _date_condition(condition, now, inner)
    return lambda page: _test_date_value(date_test, page.values.get(name))


def _text_of(value: Any) -> str | None:
    if isinstance(value, list):
        return plain_text(value) or None
    return value if isinstance(value, str) and value else None


def _single_operator(condition: Any, path: str, allowed: tuple[str, ...]) -> tuple[str, Any]:
    if not isinstance(condition, dict) or len(condition) != 1:
        raise shape_error(path, "an object with exactly one condition", condition)
    operator, operand = next(iter(condition.items()))
    if operator not in allowed:
        raise validation_error(
            f"body failed validation: {path}.{operator} is not a supported condition; use one "
            f"of {', '.join(allowed)}."
        )
    if operator in EMPTINESS and operand is not True:
        raise shape_error(f"{path}.{operator}", "`true`", operand)
    return operator, operand


def _text_condition(condition: Any, path: str) -> Callable[[str | None], bool]:
    operator, operand = _single_operator(condition, path, TEXT_OPERATORS + EMPTINESS)
    if operator in EMPTINESS:
        want_empty = operator == "is_empty"
        return lambda text: (text is None) == want_empty
    if not isinstance(operand, str):
        raise shape_error(f"{path}.{operator}", "a string", operand)
    needle = operand.casefold()
    tests: dict[str, Callable[[str], bool]] = {
        "equals": lambda text: text == operand,
        "does_not_equal": lambda text: text != operand,
        "contains": lambda text: needle in text.casefold(),
        "does_not_contain": lambda text: needle not in text.casefold(),
        "starts_with": lambda text: text.casefold().startswith(needle),
        "ends_with": lambda text: text.casefold().endswith(needle),
    }
    test = tests[operator]
    if operator in ("does_not_equal", "does_not_contain"):
        return lambda text: text is None or test(text)
    return lambda text: text is not None and test(text)


def _option_condition(condition: Any, path: str) -> Callable[[Any], bool]:
    operator, operand = _single_operator(condition, path, OPTION_OPERATORS + EMPTINESS)
    if operator in EMPTINESS:
        want_empty = operator == "is_empty"
        return lambda value: (value is None) == want_empty
    if not isinstance(operand, str):
        raise shape_error(f"{path}.{operator}", "a string", operand)
    if operator == "equals":
        return lambda value: value is not None and value["name"] == operand
    return lambda value: value is None or value["name"] != operand


def _people_condition(condition: Any, path: str) -> Callable[[list[str]], bool]:
    operator, operand = _single_operator(condition, path, PEOPLE_OPERATORS + EMPTINESS)
    if operator in EMPTINESS:
        want_empty = operator == "is_empty"
        return lambda ids: (not ids) == want_empty
    user_id = normalize_id(operand) if isinstance(operand, str) else None
    if user_id is None:
        raise shape_error(f"{path}.{operator}", "a valid uuid", operand)
    if operator == "contains":
        return lambda ids: user_id in ids
    return lambda ids: user_id not in ids


def _checkbox_condition(condition: Any, path: str) -> Callable[[bool], bool]:
    operator, operand = _single_operator(condition, path, ("equals", "does_not_equal"))
    if not isinstance(operand, bool):
        raise shape_error(f"{path}.{operator}", "a boolean", operand)
    return (lambda v: v == operand) if operator == "equals" else (lambda v: v != operand)


def _number_condition(condition: Any, path: str) -> Callable[[Any], bool]:
    operator, operand = _single_operator(condition, path, NUMBER_OPERATORS + EMPTINESS)
    if operator in EMPTINESS:
        want_empty = operator == "is_empty"
        return lambda value: (value is None) == want_empty
    if isinstance(operand, bool) or not isinstance(operand, int | float):
        raise shape_error(f"{path}.{operator}", "a number", operand)
    compare: dict[str, Callable[[float], bool]] = {
        "equals": lambda v: v == operand,
        "does_not_equal": lambda v: v != operand,
        "greater_than": lambda v: v > operand,
        "less_than": lambda v: v < operand,
        "greater_than_or_equal_to": lambda v: v >= operand,
        "less_than_or_equal_to": lambda v: v <= operand,
    }
    test = compare[operator]
    if operator == "does_not_equal":
        return lambda value: value is None or test(value)
    return lambda value: value is not None and test(value)


DateTest = Callable[[datetime | None], bool]


def _date_condition(condition: Any, now: datetime, path: str) -> DateTest:
    """A test of a moment (None when the value is empty) against one date condition."""
    operators = DATE_OPERATORS + EMPTINESS + (*RELATIVE_DATE_OPERATORS, "this_week")
    operator, operand = _single_operator(condition, path, operators)
    if operator in EMPTINESS:
        want_empty = operator == "is_empty"
        return lambda moment: (moment is None) == want_empty
    if operator in RELATIVE_DATE_OPERATORS or operator == "this_week":
        if operand != {}:
            raise shape_error(f"{path}.{operator}", "an empty object", operand)
        return _relative_date(operator, now)
    parsed = parse_date_or_datetime(operand) if isinstance(operand, str) else None
    if parsed is None:
        raise shape_error(f"{path}.{operator}", "a valid ISO 8601 date string", operand)
    start, date_only = parsed
    end = start + ONE_DAY if date_only else start
    tests: dict[str, Callable[[datetime], bool]] = {
        "equals": (lambda m: start <= m < end) if date_only else (lambda m: m == start),
        "before": lambda m: m < start,
        "after": (lambda m: m >= end) if date_only else (lambda m: m > start),
        "on_or_before": (lambda m: m < end) if date_only else (lambda m: m <= start),
        "on_or_after": lambda m: m >= start,
    }
    test = tests[operator]
    return lambda moment: moment is not None and test(moment)


def _relative_date(operator: str, now: datetime) -> DateTest:
    if operator == "this_week":
        week_start = (now - timedelta(days=(now.weekday() + 1) % 7)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        low, high = week_start, week_start + timedelta(days=7)
    else:
        days = RELATIVE_DATE_OPERATORS[operator]
        low, high = sorted((now, now + timedelta(days=days)))
    return lambda moment: moment is not None and low <= moment <= high


def _test_date_value(test: DateTest, value: Any) -> bool:
    parsed = parse_date_or_datetime(value.get("start", "")) if isinstance(value, dict) else None
    return test(parsed[0] if parsed else None)


@functools.total_ordering
class Descending:
    """Wraps a sort value so that larger values sort first."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Descending) and self.value == other.value

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Descending):
            return NotImplemented
        return bool(other.value < self.value)

    def __hash__(self) -> int:
        return hash(self.value)


def compile_sorts(raw: Any, calendar: Calendar, path: str = "body.sorts") -> SortKey:
    """A sort key for `sorts`; without sorts, newest first, like a Notion query."""
    if raw is None or raw == []:
        return lambda page: (-page.created_time.timestamp(), -page.seq)
    if not isinstance(raw, list) or len(raw) > 100:
        raise shape_error(path, "an array of at most 100 sorts", raw)
    parts = [_sort_part(item, calendar, f"{path}[{i}]") for i, item in enumerate(raw)]
    return lambda page: (*(part(page) for part in parts), page.seq)


def _sort_part(item: Any, calendar: Calendar, path: str) -> Callable[[Page], tuple[Any, ...]]:
    if not isinstance(item, dict):
        raise shape_error(path, "an object", item)
    direction = item.get("direction", "ascending")
    if direction not in ("ascending", "descending"):
        raise shape_error(f"{path}.direction", '"ascending" or "descending"', direction)
    value_of = _sort_value(item, calendar, path)

    def part(page: Page) -> tuple[Any, ...]:
        value = value_of(page)
        if value is None:
            return (1,)
        return (0, Descending(value) if direction == "descending" else value)

    return part


def _sort_value(item: dict[str, Any], calendar: Calendar, path: str) -> Callable[[Page], Any]:
    if "timestamp" in item:
        if item["timestamp"] == "created_time":
            return lambda page: page.created_time
        if item["timestamp"] == "last_edited_time":
            return lambda page: page.last_edited_time
        raise shape_error(
            f"{path}.timestamp", "`created_time` or `last_edited_time`", item["timestamp"]
        )
    key = item.get("property")
    if not isinstance(key, str):
        raise shape_error(path, "an object with `property` or `timestamp`", item)
    prop = calendar.property(key)
    if prop is None:
        raise validation_error(f"Could not find sort property with name or id: {key}")
    return _property_sort_value(prop)


def _property_sort_value(prop: PropertySchema) -> Callable[[Page], Any]:
    name = prop.name
    if prop.type in ("select", "status"):

        def option_rank(page: Page) -> Any:
            value = page.values.get(name)
            if value is None:
                return None
            ids = [o.id for o in prop.options]
            return ids.index(value["id"]) if value["id"] in ids else len(ids)

        return option_rank
    if prop.type in ("title", "rich_text", "url"):

        def text(page: Page) -> Any:
            found = _text_of(page.values.get(name))
            return found.casefold() if found else None

        return text
    if prop.type == "date":

        def moment(page: Page) -> Any:
            value = page.values.get(name)
            parsed = parse_date_or_datetime(value["start"]) if value else None
            return parsed[0] if parsed else None

        return moment
    if prop.type == "checkbox":
        return lambda page: bool(page.values.get(name))
    if prop.type == "people":
        return lambda page: ",".join(p["id"] for p in page.values.get(name) or []) or None
    return lambda page: page.values.get(name)
