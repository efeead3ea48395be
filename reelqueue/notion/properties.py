"""Notion property values: parse what pages carry, build what PATCH and POST accept.

Parsing never raises: Notion pages come from the outside world, so a missing, null or
oddly shaped value reads as None (or "" for text, [] for people and relations), and types
reelqueue does not use (formula, files, unique_id, ...) are skipped. Text read is always
storable in PostgreSQL and encodable as UTF-8 (`clean_text`): NUL characters are dropped
and lone UTF-16 surrogates become U+FFFD, the replacement character. Building enforces
Notion's write limits, which count UTF-16 code units as Notion does: at most 2,000 per
rich-text element and 100 elements per property, and (to stay well under the 500 KB body
limit) 400,000 bytes of encoded text; longer text is cut and says so. URLs hold at most
2,000.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

SUPPORTED_TYPES = frozenset(
    {
        "title",
        "rich_text",
        "select",
        "status",
        "date",
        "url",
        "number",
        "checkbox",
        "people",
        "relation",
    }
)
MAX_TEXT_ELEMENT_LENGTH = 2_000
MAX_TEXT_ELEMENTS = 100
MAX_TEXT_BYTES = 400_000
MAX_URL_LENGTH = 2_000
TRUNCATION_MARKER = "… (truncated)"
_MAX_CHARS = MAX_TEXT_ELEMENT_LENGTH * MAX_TEXT_ELEMENTS
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class DateValue:
    """A date property: `start` (a date, or a datetime when it has a time), optional end."""

    start: date | datetime
    end: date | datetime | None = None
    time_zone: str | None = None


def utf16_length(text: str) -> int:
    """Length as Notion counts it: UTF-16 code units (an emoji beyond the BMP counts 2)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def clean_text(text: str) -> str:
    """`text` without NUL (PostgreSQL cannot store it) and with lone surrogates as U+FFFD."""
    if not _UNSTORABLE.search(text):
        return text
    return _UNSTORABLE.sub(lambda found: "" if found.group() == "\x00" else "\ufffd", text)


def _clean(value: Any) -> str | None:
    return clean_text(value) if isinstance(value, str) else None


def plain_text(rich_text: Any) -> str:
    """The text of a rich-text array: each element's plain_text (or text.content), joined."""
    if not isinstance(rich_text, list):
        return ""
    parts: list[str] = []
    for element in rich_text:
        if not isinstance(element, dict):
            continue
        text = element.get("plain_text")
        if not isinstance(text, str):
            inner = element.get("text")
            text = inner.get("content") if isinstance(inner, dict) else None
        if isinstance(text, str):
            parts.append(text)
    return clean_text("".join(parts))


def _name(value: Any) -> str | None:
    return _clean(value.get("name")) if isinstance(value, dict) else None


def _when(value: Any) -> date | datetime | None:
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _date(value: Any) -> DateValue | None:
    if not isinstance(value, dict):
        return None
    start = _when(value.get("start"))
    if start is None:
        return None
    return DateValue(start, _when(value.get("end")), _clean(value.get("time_zone")))


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def _ids(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [
        clean_text(item["id"])
        for item in value
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    ]


def parse_property(prop: Any) -> Any:
    """The value of one property object ({"type": ..., <type>: ...}); None when unsupported."""
    if not isinstance(prop, dict):
        return None
    kind = prop.get("type")
    value = prop.get(kind) if isinstance(kind, str) else None
    if kind in ("title", "rich_text"):
        return plain_text(value)
    if kind in ("select", "status"):
        return _name(value)
    if kind == "date":
        return _date(value)
    if kind == "url":
        return _clean(value)
    if kind == "number":
        return _number(value)
    if kind == "checkbox":
        return value if isinstance(value, bool) else None
    if kind in ("people", "relation"):
        return _ids(value)
    return None


def page_properties(page: Any) -> dict[str, Any]:
    """Parsed values by property name; properties of unsupported types are left out."""
    properties = page.get("properties") if isinstance(page, dict) else None
    if not isinstance(properties, dict):
        return {}
    return {
        name: parse_property(prop)
        for name, prop in properties.items()
        if isinstance(name, str) and isinstance(prop, dict) and prop.get("type") in SUPPORTED_TYPES
    }


def _split(text: str) -> list[str]:
    """Greedy chunks of at most MAX_TEXT_ELEMENT_LENGTH UTF-16 units, never splitting a char."""
    size = MAX_TEXT_ELEMENT_LENGTH
    if not _ASTRAL.search(text):
        return [text[i : i + size] for i in range(0, len(text), size)]
    chunks: list[str] = []
    start = units = 0
    for index, ch in enumerate(text):
        width = 2 if ord(ch) > 0xFFFF else 1
        if units + width > size:
            chunks.append(text[start:index])
            start, units = index, 0
        units += width
    if start < len(text):
        chunks.append(text[start:])
    return chunks


def _encoded_size(text: str) -> int:
    """Bytes the text takes in the JSON body (control characters grow to \\uXXXX)."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - 2


def _fits(text: str) -> bool:
    return (
        len(text) <= _MAX_CHARS
        and _encoded_size(text) <= MAX_TEXT_BYTES
        and len(_split(text)) <= MAX_TEXT_ELEMENTS
    )


def fit_text(text: str) -> str:
    """`text` when Notion can hold it in one property, else its longest prefix + the marker."""
    if _fits(text):
        return text
    low, high = 0, min(len(text), _MAX_CHARS)
    while low < high:
        middle = (low + high + 1) // 2
        if _fits(text[:middle] + TRUNCATION_MARKER):
            low = middle
        else:
            high = middle - 1
    return text[:low] + TRUNCATION_MARKER


def rich_text_elements(text: str) -> list[dict[str, Any]]:
    """A rich-text array for `text`, cut to Notion's limits (an empty text gives [])."""
    return [{"type": "text", "text": {"content": chunk}} for chunk in _split(fit_text(text))]


def build_title(text: str) -> dict[str, Any]:
    """A title value."""
    return {"title": rich_text_elements(text)}


def build_rich_text(text: str | None) -> dict[str, Any]:
    """A rich_text value (None or "" clears it)."""
    return {"rich_text": rich_text_elements(text or "")}


def build_select(name: str | None) -> dict[str, Any]:
    """A select value (None clears it; Notion creates an option it does not know yet)."""
    return {"select": None if name is None else {"name": name}}


def build_status(kind: str, name: str | None) -> dict[str, Any]:
    """A Status value in the shape of the schema's property type, "status" or "select"."""
    if kind == "select":
        return build_select(name)
    if kind != "status":
        raise ValueError(f"a status is written as 'status' or 'select', not {kind!r}")
    if name is None:
        raise ValueError("a status-type property cannot be cleared; give an option name")
    return {"status": {"name": name}}


def build_url(value: str | None) -> dict[str, Any]:
    """A url value (None or "" clears it); a URL over 2,000 characters is a ValueError."""
    if not value:
        return {"url": None}
    length = utf16_length(value)
    if length > MAX_URL_LENGTH:
        raise ValueError(
            f"a URL of {length} characters is longer than the {MAX_URL_LENGTH:,} Notion accepts"
        )
    return {"url": value}


def _iso(value: date | datetime, *, zoned: bool = False) -> str:
    if isinstance(value, datetime) and value.tzinfo is None and not zoned:
        raise ValueError(f"{value!r} has no time zone; give an aware datetime")
    return value.isoformat()


def build_date(
    value: date | datetime | DateValue | None, end: date | datetime | None = None
) -> dict[str, Any]:
    """A date value from a date, an aware datetime or a DateValue (None clears it).

    A naive datetime is a ValueError unless a DateValue names its time_zone.
    """
    if value is None:
        return {"date": None}
    zoned = isinstance(value, DateValue) and value.time_zone is not None
    if isinstance(value, DateValue):
        start, end = value.start, value.end if end is None else end
    else:
        start = value
    body: dict[str, Any] = {
        "start": _iso(start, zoned=zoned),
        "end": None if end is None else _iso(end, zoned=zoned),
    }
    if isinstance(value, DateValue) and value.time_zone is not None:
        body["time_zone"] = value.time_zone
    return {"date": body}


def build_number(value: int | float | None) -> dict[str, Any]:
    """A number value (None clears it); NaN and infinities are a ValueError."""
    if value is None:
        return {"number": None}
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return {"number": value}


def build_checkbox(value: bool) -> dict[str, Any]:
    """A checkbox value."""
    return {"checkbox": bool(value)}
