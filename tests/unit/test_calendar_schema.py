"""The calendar schema check: every gap named, setup adds exactly what is missing."""

from __future__ import annotations

from typing import Any

import pytest

from reelqueue.calendar import PropertyNames, SchemaProblem, check_schema, setup_patch
from reelqueue.statuses import StatusTable

LABELS = StatusTable().labels
CHANNELS = ["science", "history"]


def options(*names: str) -> dict[str, Any]:
    return {"options": [{"id": f"id-{n}", "name": n, "color": "default"} for n in names]}


def data_source(**overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "Name": {"id": "title", "type": "title", "title": {}},
        "Channel": {"id": "c", "type": "select", "select": options(*CHANNELS)},
        "Topic": {"id": "t", "type": "rich_text", "rich_text": {}},
        "Story Direction": {"id": "s", "type": "rich_text", "rich_text": {}},
        "Status": {"id": "st", "type": "status", "status": options(*LABELS)},
        "Priority": {"id": "p", "type": "select", "select": options("High", "Normal", "Low")},
        "Error Log": {"id": "e", "type": "rich_text", "rich_text": {}},
        "YouTube URL": {"id": "u", "type": "url", "url": {}},
        "Updated": {"id": "d", "type": "date", "date": {}},
    }
    for name, value in overrides.items():
        if value is None:
            props.pop(name.replace("_", " "))
        else:
            props[name.replace("_", " ")] = value
    return {"object": "data_source", "id": "ds-1", "properties": props}


def test_a_complete_calendar_is_usable_whatever_its_title_is_called() -> None:
    report = check_schema(data_source(), PropertyNames(), LABELS, CHANNELS)
    assert report.problems == []
    schema = report.schema(PropertyNames())
    assert schema.names.title == "Name"
    assert schema.status_type == "status"
    assert schema.has("Updated")
    assert set(schema.property_ids.values()) >= {"title", "st", "e"}


def test_a_select_status_is_detected() -> None:
    report = check_schema(
        data_source(Status={"id": "st", "type": "select", "select": options(*LABELS)}),
        PropertyNames(),
        LABELS,
        CHANNELS,
    )
    assert report.schema(PropertyNames()).status_type == "select"


def test_every_problem_is_named_in_one_message_with_the_fix() -> None:
    report = check_schema(
        data_source(
            Topic=None,
            Error_Log=None,
            YouTube_URL={"id": "u", "type": "rich_text", "rich_text": {}},
            Status={"id": "st", "type": "status", "status": options("Draft", "Queued")},
        ),
        PropertyNames(),
        LABELS,
        CHANNELS,
    )
    with pytest.raises(SchemaProblem) as caught:
        report.schema(PropertyNames())
    message = str(caught.value)
    assert "Topic is missing" in message
    assert "Error Log is missing" in message
    assert "YouTube URL is of type rich_text, expected url" in message
    assert "Status lacks the options Processing" in message
    assert "change those properties' types in Notion" in message
    assert "\n" not in message


def test_optional_properties_may_be_absent() -> None:
    report = check_schema(
        data_source(Story_Direction=None, Priority=None, Updated=None),
        PropertyNames(),
        LABELS,
        CHANNELS,
    )
    assert report.problems == []
    assert not report.schema(PropertyNames()).has("Updated")


def test_setup_adds_missing_properties_and_keeps_existing_options() -> None:
    ds = data_source(
        Topic=None,
        Updated=None,
        Status={"id": "st", "type": "status", "status": options("Draft", "Queued")},
        Channel={"id": "c", "type": "select", "select": options("science")},
    )
    report = check_schema(ds, PropertyNames(), LABELS, CHANNELS)
    patch = setup_patch(report, PropertyNames(), LABELS, CHANNELS, ds["properties"])
    assert patch["Topic"] == {"rich_text": {}}
    assert patch["Updated"] == {"date": {}}
    status_options = patch["Status"]["status"]["options"]
    assert {"id": "id-Draft"} in status_options
    added = [o["name"] for o in status_options if "name" in o]
    assert added == [label for label in LABELS if label not in {"Draft", "Queued"}]
    assert patch["Channel"]["select"]["options"] == [{"id": "id-science"}, {"name": "history"}]
    assert "Error Log" not in patch


def test_a_missing_status_is_created_as_a_select_with_every_label() -> None:
    ds = data_source(Status=None)
    report = check_schema(ds, PropertyNames(), LABELS, CHANNELS)
    patch = setup_patch(report, PropertyNames(), LABELS, CHANNELS, ds["properties"])
    assert [o["name"] for o in patch["Status"]["select"]["options"]] == LABELS
