"""When webhook events go out: at once, or combined when a page's window ends (pure logic)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reelqueue.sandbox.webhook_timing import Aggregator, Change, Event
from reelqueue.sandbox.webhooks import DAY_S, MAX_ATTEMPTS, retry_waits

WINDOW_S = 60.0
PERSON = {"id": "person", "type": "person"}
BOT = {"id": "bot", "type": "bot"}
CALENDAR = {"id": "db", "type": "database", "data_source_id": "ds"}
ELSEWHERE = {"id": "p", "type": "page"}
SUBS = frozenset({"sub"})
WHEN = datetime(2026, 12, 3, tzinfo=UTC)


def change(
    kind: str,
    entity: str = "page-1",
    properties: tuple[str, ...] = (),
    author: dict[str, Any] = PERSON,
    parent: dict[str, Any] = CALENDAR,
    schema: tuple[dict[str, Any], ...] = (),
) -> Change:
    """A change of `entity` by `author`."""
    entity_type = "data_source" if kind.startswith("data_source.") else "page"
    return Change(entity, entity_type, kind, parent, author, WHEN, SUBS, properties, schema)


def run(edits: list[tuple[float, Change]], window_s: float = WINDOW_S) -> list[tuple[float, Event]]:
    """Feed timed changes to an aggregator, firing its timer on time; every (time, event) sent."""
    aggregator = Aggregator(window_s)
    sent: list[tuple[float, Event]] = []

    def fire_until(moment: float) -> None:
        due = aggregator.next_due()
        while due is not None and due <= moment:
            sent.extend((due, event) for event in aggregator.due(due))
            due = aggregator.next_due()

    for moment, item in edits:
        fire_until(moment)
        sent.extend((moment, event) for event in aggregator.add(item, moment))
    fire_until(float("inf"))
    return sent


gaps = st.lists(st.floats(min_value=0.0, max_value=150.0), min_size=1, max_size=40)


def _edit_times(steps: list[float]) -> list[float]:
    times, now = [], 0.0
    for step in steps:
        now += step
        times.append(now)
    return times


@given(gaps)
def test_every_property_edit_is_told_exactly_once_and_within_a_window(steps: list[float]) -> None:
    times = _edit_times(steps)
    edits = [
        (t, change("page.properties_updated", properties=(f"p{n}",))) for n, t in enumerate(times)
    ]
    sent = run(edits)
    told = [p for _, event in sent for p in event.property_ids]
    assert sorted(told) == sorted(f"p{n}" for n in range(len(times)))
    for n, moment in enumerate(times):
        (sent_at,) = [at for at, event in sent if f"p{n}" in event.property_ids]
        assert moment <= sent_at <= moment + WINDOW_S


@given(gaps)
def test_an_edit_of_a_quiet_page_goes_out_at_once_and_opens_a_fixed_window(
    steps: list[float],
) -> None:
    times = _edit_times(steps)
    edits = [
        (t, change("page.properties_updated", properties=(f"p{n}",))) for n, t in enumerate(times)
    ]
    sent = run(edits)
    window_end = None
    for n, moment in enumerate(times):
        (sent_at,) = [at for at, event in sent if f"p{n}" in event.property_ids]
        if window_end is None or moment >= window_end:
            assert sent_at == moment, "the first edit of a quiet page is not held"
            window_end = moment + WINDOW_S
        else:
            assert sent_at == window_end, "later edits wait for the end of the first one's window"


@given(gaps)
def test_a_page_edited_without_pause_gets_at_most_two_events_a_window(steps: list[float]) -> None:
    times = _edit_times(steps)
    edits = [
        (t, change("page.properties_updated", properties=(f"p{n}",))) for n, t in enumerate(times)
    ]
    sent_at = sorted(at for at, _ in run(edits))
    for n, moment in enumerate(sent_at):
        assert len([at for at in sent_at[n:] if at < moment + WINDOW_S]) <= 2


def test_a_combined_event_lists_each_property_once_every_author_and_the_latest_time() -> None:
    later = datetime(2026, 12, 3, 0, 0, 30, tzinfo=UTC)
    second = change("page.properties_updated", properties=("a", "b"), author=BOT)
    third = change("page.properties_updated", properties=("b", "c"))
    third.occurred = later
    sent = run(
        [
            (0.0, change("page.properties_updated", properties=("a",))),
            (1.0, second),
            (2.0, third),
        ]
    )
    assert [(at, e.property_ids) for at, e in sent] == [(0.0, ["a"]), (WINDOW_S, ["a", "b", "c"])]
    assert sent[1][1].authors == [BOT, PERSON]
    assert sent[1][1].occurred == later


def test_pages_have_windows_of_their_own() -> None:
    sent = run(
        [
            (0.0, change("page.properties_updated", "one", ("a",))),
            (1.0, change("page.properties_updated", "two", ("a",))),
        ]
    )
    assert [(at, e.entity_id) for at, e in sent] == [(0.0, "one"), (1.0, "two")]


def test_page_created_goes_out_at_once_and_leaves_the_first_property_edit_at_once_too() -> None:
    sent = run(
        [
            (0.0, change("page.created")),
            (0.5, change("page.created", "other")),
            (1.0, change("page.properties_updated", properties=("a",))),
        ]
    )
    assert [(at, e.type) for at, e in sent] == [
        (0.0, "page.created"),
        (0.5, "page.created"),
        (1.0, "page.properties_updated"),
    ]


def test_other_page_events_wait_one_window_from_their_first_change() -> None:
    sent = run(
        [
            (0.0, change("page.moved", parent=ELSEWHERE)),
            (5.0, change("page.deleted", "other")),
        ]
    )
    assert [(at, e.type) for at, e in sent] == [(WINDOW_S, "page.moved"), (65.0, "page.deleted")]


def test_trashed_and_restored_within_the_window_sends_nothing() -> None:
    assert run([(0.0, change("page.deleted")), (10.0, change("page.undeleted"))]) == []


def test_restored_after_the_window_sends_both() -> None:
    sent = run([(0.0, change("page.deleted")), (61.0, change("page.undeleted"))])
    assert [e.type for _, e in sent] == ["page.deleted", "page.undeleted"]


def test_moved_out_and_back_within_the_window_sends_nothing() -> None:
    aggregator = Aggregator(WINDOW_S)
    assert aggregator.add(change("page.moved", parent=ELSEWHERE), 0.0, CALENDAR) == []
    assert aggregator.add(change("page.moved", parent=CALENDAR), 1.0, ELSEWHERE) == []
    assert aggregator.next_due() is None


def test_moved_twice_within_the_window_names_the_last_parent() -> None:
    third = {"id": "q", "type": "page"}
    aggregator = Aggregator(WINDOW_S)
    aggregator.add(change("page.moved", parent=ELSEWHERE), 0.0, CALENDAR)
    aggregator.add(change("page.moved", parent=third), 1.0, ELSEWHERE)
    (event,) = aggregator.due(WINDOW_S)
    assert event.parent == third


def _prop(prop_id: str, name: str | None, action: str) -> dict[str, Any]:
    return {"id": prop_id, "name": name, "action": action}


def test_schema_changes_within_the_window_are_combined_per_property() -> None:
    sent = run(
        [
            (0.0, change("data_source.schema_updated", "ds", schema=(_prop("a", "A", "created"),))),
            (
                1.0,
                change("data_source.schema_updated", "ds", schema=(_prop("a", "A2", "updated"),)),
            ),
            (2.0, change("data_source.schema_updated", "ds", schema=(_prop("b", "B", "updated"),))),
            (
                3.0,
                change("data_source.schema_updated", "ds", schema=(_prop("b", None, "deleted"),)),
            ),
        ]
    )
    ((at, event),) = sent
    assert at == WINDOW_S
    assert event.entity_type == "data_source"
    assert event.schema_changes == [_prop("a", "A2", "created"), _prop("b", None, "deleted")]


def test_a_property_created_and_removed_within_the_window_sends_nothing() -> None:
    created = change("data_source.schema_updated", "ds", schema=(_prop("a", "A", "created"),))
    removed = change("data_source.schema_updated", "ds", schema=(_prop("a", None, "deleted"),))
    assert run([(0.0, created), (1.0, removed)]) == []


def test_a_zero_window_sends_every_edit_at_once() -> None:
    edits = [(0.0, change("page.properties_updated", properties=(str(n),))) for n in range(3)]
    sent = run(edits, window_s=0.0)
    assert [e.property_ids for _, e in sent] == [["0"], ["1"], ["2"]]


def test_retries_double_and_the_last_attempt_comes_a_day_after_the_first() -> None:
    waits = retry_waits()
    assert len(waits) == MAX_ATTEMPTS - 1
    assert all(later == 2 * earlier for earlier, later in itertools.pairwise(waits))
    assert abs(sum(waits) - DAY_S) < 1e-6
    assert retry_waits(0.001) == [w * 0.001 for w in waits]
