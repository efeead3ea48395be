"""Property values: build→parse round trips, Notion's write limits, and tolerant parsing."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reelqueue.notion import (
    DateValue,
    build_checkbox,
    build_date,
    build_number,
    build_rich_text,
    build_select,
    build_status,
    build_title,
    build_url,
    page_properties,
    parse_property,
    plain_text,
)
from reelqueue.notion.properties import (
    MAX_TEXT_BYTES,
    MAX_TEXT_ELEMENT_LENGTH,
    MAX_TEXT_ELEMENTS,
    SUPPORTED_TYPES,
    TRUNCATION_MARKER,
    clean_text,
    utf16_length,
)

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "notion-fixtures"
CAP = MAX_TEXT_ELEMENT_LENGTH * MAX_TEXT_ELEMENTS


def as_value(kind: str, built: dict[str, Any]) -> dict[str, Any]:
    """A built value as a page would carry it back (id and type added)."""
    return {"id": "x", "type": kind, **built}


def parsed_text(kind: str, built: dict[str, Any]) -> Any:
    return parse_property(as_value(kind, built))


def check_elements(built: dict[str, Any], kind: str) -> None:
    elements = built[kind]
    assert len(elements) <= MAX_TEXT_ELEMENTS
    for element in elements:
        content = element["text"]["content"]
        assert element["type"] == "text"
        assert 0 < utf16_length(content) <= MAX_TEXT_ELEMENT_LENGTH
    assert len(json.dumps(built, ensure_ascii=False).encode()) <= MAX_TEXT_BYTES + 10_000


def fits(text: str) -> bool:
    # Greedy chunks hold at least 1,999 units each, so under 100 × 1,999 units always fits.
    encoded = len(json.dumps(text, ensure_ascii=False).encode()) - 2
    return utf16_length(text) <= 100 * 1999 and encoded <= MAX_TEXT_BYTES


# Long texts made of repeated random pieces: cheap to generate, any length up to far past the cap.
long_texts = st.builds(
    lambda piece, times, tail: piece * times + tail,
    st.text(min_size=1, max_size=40),
    st.integers(min_value=0, max_value=12_000),
    st.text(max_size=30),
)
texts = st.one_of(st.text(), long_texts)


@settings(max_examples=150, deadline=None)
@given(texts, st.sampled_from(["title", "rich_text"]))
def test_text_round_trips_or_is_cut_with_a_visible_marker(text: str, kind: str) -> None:
    built = build_title(text) if kind == "title" else build_rich_text(text)
    check_elements(built, kind)
    back = parsed_text(kind, built)
    if fits(text):
        assert back == clean_text(text)
    elif back != clean_text(text):
        assert back.endswith(TRUNCATION_MARKER)
        assert clean_text(text).startswith(back[: -len(TRUNCATION_MARKER)])


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("a" * CAP, True),
        ("a" * (CAP + 1), False),
        ("😀" * (CAP // 2), True),
        ("a" + "😀" * (CAP // 2), False),
        ("é" * CAP, True),
        ("中" * CAP, False),
        ("\x1b" * CAP, False),
    ],
    ids=[
        "ascii-at-cap",
        "ascii-over-cap",
        "emoji-at-cap",
        "emoji-one-over",
        "latin1",
        "cjk-bytes",
        "escaped-controls",
    ],
)
def test_the_cap_counts_utf16_units_and_bytes(text: str, kept: bool) -> None:
    built = build_rich_text(text)
    check_elements(built, "rich_text")
    back = parsed_text("rich_text", built)
    if kept:
        assert back == text
    else:
        assert back.endswith(TRUNCATION_MARKER)
        assert len(back) > MAX_TEXT_BYTES // 6 - 1000


def test_an_emoji_is_never_split_across_elements() -> None:
    text = "a" + "😀" * 3000
    elements = build_rich_text(text)["rich_text"]
    assert [utf16_length(e["text"]["content"]) for e in elements] == [1999, 2000, 2000, 2]
    assert "".join(e["text"]["content"] for e in elements) == text


def test_empty_text_clears_the_property() -> None:
    assert build_rich_text("") == {"rich_text": []}
    assert build_rich_text(None) == {"rich_text": []}
    assert build_title("") == {"title": []}


@given(st.one_of(st.none(), st.text(min_size=1, max_size=100)))
def test_select_round_trips(name: str | None) -> None:
    assert parse_property(as_value("select", build_select(name))) == (
        None if name is None else clean_text(name)
    )


@given(st.text(min_size=1, max_size=100), st.sampled_from(["status", "select"]))
def test_status_is_written_in_the_schema_shape_and_round_trips(name: str, kind: str) -> None:
    built = build_status(kind, name)
    assert list(built) == [kind]
    assert parse_property(as_value(kind, built)) == clean_text(name)


def test_status_rejects_an_unknown_kind_and_a_cleared_status() -> None:
    with pytest.raises(ValueError, match="'status' or 'select'"):
        build_status("multi_select", "Queued")
    with pytest.raises(ValueError, match="cannot be cleared"):
        build_status("status", None)
    assert build_status("select", None) == {"select": None}


@given(st.text(min_size=1, max_size=2000).filter(lambda u: utf16_length(u) <= 2000))
def test_url_round_trips(url: str) -> None:
    assert parse_property(as_value("url", build_url(url))) == clean_text(url)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("Null \x00 inside", "Null  inside"),
        ("lone \ud800 high", "lone \ufffd high"),
        ("\udfff", "\ufffd"),
        ("🎬 שלום مرحبا", "🎬 שלום مرحبا"),
    ],
)
def test_text_read_from_notion_is_storable(raw: str, stored: str) -> None:
    value = {"type": "rich_text", "rich_text": [{"plain_text": raw}]}
    assert parse_property(value) == stored
    assert parse_property({"type": "select", "select": {"name": raw}}) == stored
    stored.encode("utf-8")


@given(st.text(st.characters(exclude_categories=())))
def test_cleaned_text_always_encodes_and_has_no_nul(raw: str) -> None:
    cleaned = clean_text(raw)
    assert "\x00" not in cleaned
    cleaned.encode("utf-8")
    assert len(cleaned) <= len(raw)


def test_url_over_2000_characters_is_refused_not_cut() -> None:
    with pytest.raises(ValueError, match="2,000"):
        build_url("https://example.com/" + "a" * 2000)
    assert build_url(None) == {"url": None}
    assert build_url("") == {"url": None}


aware = st.datetimes(
    min_value=datetime(1900, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), UTC]),
)


@given(st.one_of(st.dates(), aware), st.one_of(st.none(), st.dates(), aware))
def test_date_round_trips(start: date | datetime, end: date | datetime | None) -> None:
    parsed = parse_property(as_value("date", build_date(start, end)))
    assert parsed == DateValue(start, end)
    assert type(parsed.start) is type(start)


def test_date_with_a_time_zone_and_a_naive_datetime() -> None:
    local = DateValue(datetime(2026, 7, 1, 9, 30), time_zone="Europe/Berlin")
    assert build_date(local) == {
        "date": {"start": "2026-07-01T09:30:00", "end": None, "time_zone": "Europe/Berlin"}
    }
    assert parse_property(as_value("date", build_date(local))) == local
    with pytest.raises(ValueError, match="no time zone"):
        build_date(datetime(2026, 7, 1, 9, 30))
    assert build_date(None) == {"date": None}


@given(st.one_of(st.none(), st.integers(), st.floats(allow_nan=False, allow_infinity=False)))
def test_number_round_trips(value: int | float | None) -> None:
    assert parse_property(as_value("number", build_number(value))) == value


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True])
def test_number_refuses_what_json_or_notion_cannot_hold(value: float) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        build_number(value)


@given(st.booleans())
def test_checkbox_round_trips(value: bool) -> None:
    assert parse_property(as_value("checkbox", build_checkbox(value))) is value


def test_people_and_relation_parse_to_ids() -> None:
    people = {"type": "people", "people": [{"object": "user", "id": "u1"}, {"id": 3}, "x"]}
    relation = {"type": "relation", "relation": [{"id": "p1"}, {"id": "p2"}], "has_more": False}
    assert parse_property(people) == ["u1"]
    assert parse_property(relation) == ["p1", "p2"]


def test_plain_text_joins_each_elements_plain_text() -> None:
    rich = [
        {"type": "text", "text": {"content": "ignored"}, "plain_text": "Hello, "},
        {"type": "mention", "mention": {}, "plain_text": "@Ada"},
        {"type": "text", "text": {"content": "!"}},
        {"type": "equation"},
        None,
    ]
    assert plain_text(rich) == "Hello, @Ada!"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    st.sampled_from([*sorted(SUPPORTED_TYPES), "formula", "files", "unique_id", "bogus"]),
    json_values,
)
def test_parsing_odd_values_never_raises(kind: str, value: Any) -> None:
    parse_property({"type": kind, kind: value})
    parse_property(value)
    page_properties({"properties": {"P": {"type": kind, kind: value}, "Q": value}})
    page_properties(value)
    plain_text(value)


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("title", None, ""),
        ("rich_text", "not a list", ""),
        ("select", None, None),
        ("select", {"name": 5}, None),
        ("status", {}, None),
        ("date", None, None),
        ("date", {"start": "yesterday"}, None),
        ("url", 12, None),
        ("number", "3", None),
        ("number", math.nan, None),
        ("checkbox", "true", None),
        ("people", None, []),
        ("relation", {"id": "x"}, []),
        ("formula", {"type": "string", "string": "x"}, None),
    ],
)
def test_missing_or_wrong_shaped_values_parse_to_none_or_empty(
    kind: str, value: Any, expected: Any
) -> None:
    assert parse_property({"type": kind, kind: value}) == expected
    assert parse_property({"type": kind}) in (None, "", [])


def load_fixture(name: str) -> Any:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"recorded Notion responses not found at {FIXTURES}")
    return json.loads(path.read_text())


def test_the_recorded_page_with_every_property_type_parses() -> None:
    results = load_fixture("query_all_property_types.json")["response"]["results"]
    values = {page["id"]: page_properties(page) for page in results}
    first = values["38b9ce7b-60a4-810a-a3e0-d0c7fde33f0c"]
    assert first == {
        "Text": "Text 2",
        "URL": None,
        "Checkbox": True,
        "AI summary": "",
        "AI custom": "",
        "Number": 2,
        "AI key info": "",
        "Select": None,
        "Status": "Not started",
        "Relation two-way": [],
        "Date": None,
        "Relation": [],
        "People": [],
        "Title": "Item 2",
    }
    second = values["38b9ce7b-60a4-81b3-80cb-df63cbb9d090"]
    assert (second["Title"], second["Text"], second["Number"], second["Checkbox"]) == (
        "Item 1",
        "Text 1",
        1,
        False,
    )


def test_the_recorded_status_patch_answer_parses() -> None:
    page = load_fixture("patch_status_blocked.json")["response"]
    values = page_properties(page)
    assert values["Status"] == "Blocked"
    assert values["Priority"] == "✹ High"
    assert values["Due Date"] == DateValue(date(2026, 7, 1))
    assert values["Task"] == "Run first Marathon"
    assert "Urgency" not in values
    request = load_fixture("patch_status_blocked.json")["request"]["body"]["properties"]
    assert {"type": "status", **build_status("status", "Blocked")} == request["Status"]


def test_the_recorded_minute_floored_dates_parse_with_their_offsets() -> None:
    pages = load_fixture("query_last_edited_time_filter.json")[0]["response"]["results"]
    first = page_properties(pages[0])
    assert first["Name"] == "next year"
    assert first["Date"] == DateValue(
        datetime(2027, 6, 27, 18, 1, tzinfo=timezone(timedelta(hours=1)))
    )
    assert "Last Edited" not in first
