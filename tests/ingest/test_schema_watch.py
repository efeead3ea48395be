"""Schemas read again at run time: renames followed by id, removals named with their fix."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from reelqueue.calendar import CalendarSchema, PropertyNames, check_schema, refresh_schema
from reelqueue.ingest.moves import SCHEMA_EVENTS, moved_to
from reelqueue.ingest.schema_watch import admissible
from reelqueue.ingest.snapshot import PageSnapshot
from reelqueue.ingest.webhooks import HANDLED_EVENT_TYPES, Delivery, Verdict, classify
from reelqueue.statuses import StatusTable
from tests.calendar.test_schema import CHANNELS, LABELS, data_source

TABLE = StatusTable()
OURS = "6f1c2a8e-1b7d-4e4a-9a55-0e3c3f0c1a01"


def start() -> CalendarSchema:
    return check_schema(data_source(), PropertyNames(), LABELS, CHANNELS).schema(PropertyNames())


def renamed(source: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    changed = copy.deepcopy(source)
    props = changed["properties"]
    changed["properties"] = {renames.get(name, name): value for name, value in props.items()}
    return changed


NAMES = ["Channel", "Topic", "Status", "Error Log", "YouTube URL", "Priority"]
new_names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1
).filter(lambda name: name not in {"Name", *NAMES, "Story Direction", "Updated"})


@given(st.dictionaries(st.sampled_from(NAMES), new_names, min_size=1))
def test_renamed_properties_are_followed_by_id(renames: dict[str, str]) -> None:
    assume(len(set(renames.values())) == len(renames))
    after = refresh_schema(start(), renamed(data_source(), renames), LABELS, CHANNELS)
    assert after.problems == ()
    assert after.unusable == frozenset()
    for old, new in renames.items():
        field = next(f for f, name in vars(PropertyNames()).items() if name == old)
        assert getattr(after.names, field) == new
        assert after.has(new)
    page = {
        "id": OURS,
        "properties": {
            name: {"id": prop["id"], "type": prop["type"], "marker": name}
            for name, prop in renamed(data_source(), renames)["properties"].items()
        },
    }
    # Read with the schema known before the rename, each value is still found by id.
    keyed = start().keyed(page)["properties"]
    for old, new in renames.items():
        assert keyed[old]["marker"] == new


def test_a_removed_required_property_is_a_problem_with_its_fix() -> None:
    after = refresh_schema(start(), data_source(Channel=None), LABELS, CHANNELS)
    assert after.unusable == frozenset({"channel"})
    assert after.lacks(["channel", "status"])
    assert not after.lacks(["status", "error_log"])
    (problem,) = after.problems
    assert problem == (
        "property Channel was removed from data source ds-1: add a Channel property of type "
        "select with the options science, history, or run `reelqueue notion setup`"
    )


def test_a_retyped_status_names_the_types_and_options_it_needs() -> None:
    retyped = data_source(Status={"id": "st", "type": "rich_text", "rich_text": {}})
    after = refresh_schema(start(), retyped, LABELS, CHANNELS)
    assert after.unusable == frozenset({"status"})
    (problem,) = after.problems
    assert "property Status of data source ds-1 is now of type rich_text" in problem
    assert "status or select with the options " + ", ".join(LABELS) in problem


def test_an_optional_property_may_go_and_come_back() -> None:
    gone = refresh_schema(start(), data_source(Updated=None), LABELS, CHANNELS)
    assert gone.problems == ()
    assert not gone.has("Updated")
    back = refresh_schema(gone, data_source(), LABELS, CHANNELS)
    assert back.has("Updated")


def test_a_fixed_schema_has_no_problems_left() -> None:
    broken = refresh_schema(start(), data_source(Channel=None), LABELS, CHANNELS)
    fixed = refresh_schema(broken, data_source(), LABELS, CHANNELS)
    assert fixed.problems == ()
    assert fixed.unusable == frozenset()


def test_writes_go_by_property_id() -> None:
    schema = start()
    body = schema.by_id({"Status": {"status": {"name": "Queued"}}, "Unknown": {}})
    assert body == {"st": {"status": {"name": "Queued"}}, "Unknown": {}}


def snapshot(label: str | None) -> PageSnapshot:
    return PageSnapshot(
        page_id=OURS,
        data_source_id=None,
        last_edited_time=None,
        last_edited_by=None,
        in_trash=False,
        title="t",
        channel=None,
        topic="",
        story_direction="",
        status_label=label,
        priority_label=None,
        error_log="",
        youtube_url=None,
    )


def test_without_a_channel_queued_entries_wait_and_other_edits_go_through() -> None:
    broken = refresh_schema(start(), data_source(Channel=None), LABELS, CHANNELS)
    reads = [snapshot("Queued"), snapshot("Cancelled"), snapshot("Assets Approved")]
    assert [s.status_label for s in admissible(reads, broken, TABLE)] == [
        "Cancelled",
        "Assets Approved",
    ]
    no_status = refresh_schema(start(), data_source(Status=None), LABELS, CHANNELS)
    assert admissible(reads, no_status, TABLE) == []
    assert admissible(reads, start(), TABLE) == reads


parents = st.one_of(
    st.fixed_dictionaries({"type": st.just("data_source_id"), "data_source_id": st.uuids()}),
    st.fixed_dictionaries({"type": st.just("page_id"), "page_id": st.uuids()}),
    st.fixed_dictionaries({"type": st.just("database_id"), "database_id": st.uuids()}),
    st.fixed_dictionaries({"type": st.just("workspace"), "workspace": st.just(True)}),
    st.just(None),
    st.dictionaries(st.text(), st.text()),
)


@given(parents)
def test_only_a_page_under_one_of_our_data_sources_is_in_the_calendar(parent: Any) -> None:
    if isinstance(parent, dict):
        parent = {k: str(v) if k.endswith("_id") else v for k, v in parent.items()}
    where = moved_to({"id": OURS, "parent": parent}, {OURS})
    assert where, "a page elsewhere is described in words"
    home = {"type": "data_source_id", "data_source_id": OURS.replace("-", "").upper()}
    assert moved_to({"id": OURS, "parent": home}, {OURS}) is None


BOT = "1edc05f6-2702-81b5-8408-00279347f034"


@given(st.sampled_from(sorted(HANDLED_EVENT_TYPES)))
def test_our_own_schema_changes_still_ask_for_the_schema_anew(event_type: str) -> None:
    delivery = Delivery(
        event_id="e",
        event_type=event_type,
        entity_id=OURS,
        author_ids=(BOT,),
        author_types=("bot",),
        data_source_id=None,
        timestamp=None,
        body={},
    )
    expected = Verdict.ACCEPTED if event_type in SCHEMA_EVENTS else Verdict.OWN_WRITE
    assert classify(delivery, bot_user_id=BOT) is expected
