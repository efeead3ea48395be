"""Admin inputs of the webhook features: any JSON is accepted or refused with a Notion 400."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reelqueue.sandbox.errors import NotionError
from reelqueue.sandbox.moves import parse_parent
from reelqueue.sandbox.schema_events import schema_diff
from reelqueue.sandbox.store import Calendar
from reelqueue.sandbox.webhooks import EVENT_TYPES, unknown_event_types

DATA_SOURCE = "11111111-1111-4111-8111-111111111111"
DATABASE = "22222222-2222-4222-8222-222222222222"
CALENDAR = Calendar(
    "Content Calendar",
    "status",
    datetime(2026, 12, 3, tzinfo=UTC),
    {},
    random.Random(0),
    database_id=DATABASE,
    data_source_id=DATA_SOURCE,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=15), inner),
    max_leaves=12,
)
ids = st.sampled_from(
    [DATA_SOURCE, DATABASE, DATA_SOURCE.replace("-", ""), "3333333333334333a333333333333333", "x"]
)
parents = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["page_id", "data_source_id", "database_id", "workspace"])
        | json_values,
        "page_id": ids | json_values,
        "data_source_id": ids | json_values,
        "database_id": ids | json_values,
    },
)


@given(parents | json_values)
def test_a_move_target_is_a_page_the_own_data_source_or_a_400(raw: Any) -> None:
    status, target = 200, None
    try:
        target = parse_parent(raw, CALENDAR)
    except NotionError as error:
        status = error.status
    assert status in (200, 400)
    assert target is None or len(target) == 36


def test_a_move_back_names_the_own_data_source_or_database() -> None:
    assert parse_parent({"type": "data_source_id", "data_source_id": DATA_SOURCE}, CALENDAR) is None
    assert parse_parent({"database_id": DATABASE.replace("-", "")}, CALENDAR) is None
    page = "3333333333334333a333333333333333"
    assert parse_parent({"page_id": page}, CALENDAR) == "33333333-3333-4333-a333-333333333333"


@given(json_values)
def test_event_types_are_a_list_of_names_or_refused(raw: Any) -> None:
    unknown = unknown_event_types(raw)
    if unknown is None:
        assert not (isinstance(raw, list) and raw and all(isinstance(t, str) for t in raw))
    else:
        assert unknown == [t for t in raw if t not in EVENT_TYPES]


@given(
    st.dictionaries(st.sampled_from("abcdef"), st.sampled_from(["A", "B", "C"])),
    st.dictionaries(st.sampled_from("abcdef"), st.sampled_from(["A", "B", "C"])),
)
def test_a_schema_diff_names_every_property_that_changed(
    before: dict[str, str], after: dict[str, str]
) -> None:
    changes = schema_diff(before, after)
    assert len({c["id"] for c in changes}) == len(changes)
    for change in changes:
        if change["action"] == "created":
            assert change["id"] not in before
            assert change["name"] == after[change["id"]]
        elif change["action"] == "updated":
            assert before[change["id"]] != after[change["id"]] == change["name"]
        else:
            assert change == {"id": change["id"], "name": None, "action": "deleted"}
            assert change["id"] not in after
    unchanged = {k for k in before if after.get(k) == before[k]}
    assert unchanged.isdisjoint(c["id"] for c in changes)
