"""Page snapshots: what a Notion page says, read without ever failing on odd values."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelqueue.calendar import PropertyNames
from reelqueue.ingest import PageSnapshot
from tests.strategies import json_values

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "notion-fixtures"


def text(value: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": value, "link": None}, "plain_text": value}]


def calendar_page(**props: Any) -> dict[str, Any]:
    page_id = str(uuid.uuid4())
    properties = {
        "Title": {"id": "title", "type": "title", "title": text("Why ice floats")},
        "Channel": {"id": "c", "type": "select", "select": {"id": "1", "name": "science"}},
        "Topic": {"id": "t", "type": "rich_text", "rich_text": text("Density ") + text("of ice")},
        "Status": {"id": "s", "type": "status", "status": {"id": "2", "name": "Queued"}},
        "Priority": {"id": "p", "type": "select", "select": None},
        "Error Log": {"id": "e", "type": "rich_text", "rich_text": []},
        "YouTube URL": {"id": "u", "type": "url", "url": None},
    }
    properties.update(props)
    return {
        "object": "page",
        "id": page_id.replace("-", ""),
        "last_edited_time": "2026-06-27T17:01:00.000Z",
        "last_edited_by": {"object": "user", "id": "person-1"},
        "parent": {"type": "data_source_id", "data_source_id": "3839ce7b60a4802cb152000ba814957b"},
        "in_trash": False,
        "properties": properties,
    }


def test_a_calendar_page_reads_as_its_values() -> None:
    page = calendar_page()
    snap = PageSnapshot.from_page(page, PropertyNames())
    assert snap.page_id == str(uuid.UUID(page["id"]))
    assert snap.data_source_id == "3839ce7b-60a4-802c-b152-000ba814957b"
    assert snap.title == "Why ice floats"
    assert snap.topic == "Density of ice"
    assert snap.channel == "science"
    assert snap.status_label == "Queued"
    assert snap.priority_label is None
    assert snap.error_log == ""
    assert snap.last_edited_by == "person-1"
    assert snap.last_edited_time is not None
    assert snap.last_edited_time.minute == 1


def test_a_select_typed_status_reads_the_same() -> None:
    page = calendar_page(Status={"id": "s", "type": "select", "select": {"name": "Cancelled"}})
    assert PageSnapshot.from_page(page, PropertyNames()).status_label == "Cancelled"


property_values = json_values(max_leaves=8)


@given(
    st.dictionaries(
        st.sampled_from(["Title", "Channel", "Topic", "Status", "Priority", "Error Log", "X"]),
        st.fixed_dictionaries({"type": st.sampled_from(["title", "select", "status", "rich_text",
                                                         "url", "formula", "bogus"])},
                              optional={"title": property_values, "select": property_values,
                                        "status": property_values, "rich_text": property_values,
                                        "url": property_values}),
    ),
    property_values,
)  # fmt: skip
def test_odd_property_values_never_break_a_read(props: dict[str, Any], edited: Any) -> None:
    page = calendar_page(**props)
    page["last_edited_time"] = edited
    page["last_edited_by"] = edited
    snap = PageSnapshot.from_page(page, PropertyNames())
    assert isinstance(snap.title, str)
    assert snap.status_label is None or isinstance(snap.status_label, str)


def test_the_recorded_status_page_reads() -> None:
    path = FIXTURES / "patch_status_blocked.json"
    if not path.exists():
        pytest.skip(f"recorded Notion responses not found at {FIXTURES}")
    page = json.loads(path.read_text())["response"]
    snap = PageSnapshot.from_page(page, PropertyNames(title="Task"))
    assert snap.title == "Run first Marathon"
    assert snap.status_label == "Blocked"
    assert snap.priority_label == "✹ High"
    assert snap.page_id == "3839ce7b-60a4-81c8-867a-f81fd71aa55c"
