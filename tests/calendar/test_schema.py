"""The calendar schema check: every gap named, setup adds exactly what is missing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelqueue.calendar import (
    PropertyNames,
    SchemaProblem,
    calendar_properties,
    calendar_title,
    check_schema,
    setup_patch,
    status_instructions,
)
from reelqueue.errors import UserError
from reelqueue.statuses import SHORT_LABELS, StatusTable

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


def test_missing_status_options_point_to_setup_for_the_list_to_add_by_hand() -> None:
    report = check_schema(
        data_source(Status={"id": "st", "type": "status", "status": options("Draft")}),
        PropertyNames(),
        LABELS,
        CHANNELS,
    )
    with pytest.raises(SchemaProblem, match="names the Status options to add by hand"):
        report.schema(PropertyNames())


def test_optional_properties_may_be_absent() -> None:
    report = check_schema(
        data_source(Story_Direction=None, Priority=None, Updated=None),
        PropertyNames(),
        LABELS,
        CHANNELS,
    )
    assert report.problems == []
    assert not report.schema(PropertyNames()).has("Updated")


def test_setup_adds_missing_properties_and_keeps_every_existing_option() -> None:
    ds = data_source(
        Topic=None,
        Updated=None,
        Status={"id": "st", "type": "select", "select": options("Draft", "Queued", "Someday")},
        Channel={"id": "c", "type": "select", "select": options("science", "cooking")},
    )
    report = check_schema(ds, PropertyNames(), LABELS, CHANNELS)
    patch = setup_patch(report, PropertyNames(), LABELS, CHANNELS, ds["properties"])
    assert patch["Topic"] == {"rich_text": {}}
    assert patch["Updated"] == {"date": {}}
    status_options = patch["Status"]["select"]["options"]
    assert status_options[:3] == [
        {"id": "id-Draft", "name": "Draft"},
        {"id": "id-Queued", "name": "Queued"},
        {"id": "id-Someday", "name": "Someday"},
    ]
    added = [o["name"] for o in status_options[3:]]
    assert added == [label for label in LABELS if label not in {"Draft", "Queued"}]
    assert patch["Channel"]["select"]["options"] == [
        {"id": "id-science", "name": "science"},
        {"id": "id-cooking", "name": "cooking"},
        {"name": "history"},
    ]
    assert "Error Log" not in patch
    assert status_instructions(report, PropertyNames(), StatusTable()) == []


def test_a_status_type_status_is_never_patched_and_its_options_are_named_by_group() -> None:
    table = StatusTable(SHORT_LABELS)
    ds = data_source(
        Status={
            "id": "st",
            "type": "status",
            "status": options("Not started", "In progress", "Done"),
        },
        Priority={"id": "p", "type": "select", "select": options("High")},
    )
    report = check_schema(ds, PropertyNames(), table.labels, CHANNELS)
    patch = setup_patch(report, PropertyNames(), table.labels, CHANNELS, ds["properties"])
    assert set(patch) == {"Priority"}
    assert [o["name"] for o in patch["Priority"]["select"]["options"]] == ["High", "Normal", "Low"]
    lines = status_instructions(report, PropertyNames(), table)
    assert "Status is a status property" in lines[0]
    assert lines[1] == "  To-do: Queued"
    assert lines[2].startswith("  In progress: Assets Ready, Assets Approved, Video Ready,")
    assert "In progress: " not in lines[2][len("  In progress: ") :]
    assert lines[3] == (
        "  Complete: Asset Error, Composite Error, Video Error, Audio Error, SFX Error, "
        "Assembly Error, Upload Error, Cancelled, Invalid Input"
    )
    named = [label for line in lines[1:] for label in line.split(": ", 1)[1].split(", ")]
    assert sorted(named) == sorted(report.missing_status_options)
    assert len(named) == 18


@given(st.sets(st.sampled_from(StatusTable(SHORT_LABELS).labels)))
def test_hand_instructions_name_exactly_the_missing_options_each_in_its_group(
    present: set[str],
) -> None:
    table = StatusTable(SHORT_LABELS)
    ds = data_source(Status={"id": "st", "type": "status", "status": options(*present)})
    report = check_schema(ds, PropertyNames(), table.labels, CHANNELS)
    lines = status_instructions(report, PropertyNames(), table)
    missing = [label for label in table.labels if label not in present]
    if not missing:
        assert lines == []
        return
    named: dict[str, str] = {}
    for line in lines[1:]:
        group, labels = line.strip().split(": ", 1)
        for label in labels.split(", "):
            named[label] = group
    assert list(named) == sorted(
        missing, key=lambda x: ("To-do", "In progress", "Complete").index(table.group(x))
    )
    assert all(table.group(label) == group for label, group in named.items())


def test_check_lists_every_gap_optional_ones_included() -> None:
    report = check_schema(
        data_source(
            Updated=None,
            Channel={"id": "c", "type": "select", "select": options("science")},
            Priority={"id": "p", "type": "select", "select": options()},
        ),
        PropertyNames(),
        LABELS,
        CHANNELS,
    )
    assert report.problems == []
    assert report.gaps == [
        "Updated is missing (optional)",
        "Channel lacks the options history",
        "Priority lacks the options High, Normal, Low",
    ]


@given(
    st.lists(st.sampled_from(LABELS), unique=True),
    st.lists(st.text(min_size=1, max_size=8), unique=True, max_size=5),
)
def test_setup_never_drops_an_option_and_adds_exactly_the_missing_ones(
    present: list[str], strangers: list[str]
) -> None:
    existing = list(dict.fromkeys(present + strangers))
    ds = data_source(Status={"id": "st", "type": "select", "select": options(*existing)})
    report = check_schema(ds, PropertyNames(), LABELS, CHANNELS)
    patch = setup_patch(report, PropertyNames(), LABELS, CHANNELS, ds["properties"])
    if set(LABELS) <= set(existing):
        assert "Status" not in patch
        return
    sent = patch["Status"]["select"]["options"]
    assert [o["name"] for o in sent] == existing + [x for x in LABELS if x not in existing]
    assert all("id" in o for o in sent[: len(existing)])


def test_a_new_calendar_has_every_property_and_option_reelqueue_checks_for() -> None:
    table = StatusTable(SHORT_LABELS)
    properties = calendar_properties(PropertyNames(), table, ["science", "history", "science"])
    as_read = {
        name: {"id": name, "type": next(iter(spec)), **spec} for name, spec in properties.items()
    }
    for spec in as_read.values():
        for option in spec.get("select", {}).get("options", []):
            option["id"] = option["name"]
    report = check_schema(
        {"id": "ds", "properties": as_read}, PropertyNames(), table.labels, ["science", "history"]
    )
    assert report.gaps == []
    assert report.schema(PropertyNames()).status_type == "select"
    status = properties["Status"]["select"]["options"]
    assert [o["name"] for o in status] == table.labels
    colors = {o["name"]: o["color"] for o in status}
    assert colors["Queued"] == "gray"
    assert colors["In progress"] == "blue"
    assert colors["Done"] == "green"
    assert colors["Video Error"] == "red"
    assert [o["name"] for o in properties["Channel"]["select"]["options"]] == [
        "science",
        "history",
    ]


def test_a_calendar_title_fits_notions_limit_in_utf16_units() -> None:
    assert calendar_title("  Videos 2027 ") == [
        {"type": "text", "text": {"content": "Videos 2027"}}
    ]
    assert calendar_title("🎬" * 1000)[0]["text"]["content"] == "🎬" * 1000
    with pytest.raises(UserError, match="longer than Notion's 2000"):
        calendar_title("🎬" * 1001)
    with pytest.raises(UserError, match="empty"):
        calendar_title("   ")


def test_a_missing_status_is_created_as_a_select_with_every_label() -> None:
    ds = data_source(Status=None)
    report = check_schema(ds, PropertyNames(), LABELS, CHANNELS)
    patch = setup_patch(report, PropertyNames(), LABELS, CHANNELS, ds["properties"])
    assert [o["name"] for o in patch["Status"]["select"]["options"]] == LABELS
