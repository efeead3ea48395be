"""The ingest rules as a table, without a database: for each label the creator sets and
each place a task can be, the decision is what the rules say."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelqueue.config import Channel, Channels
from reelqueue.ingest import Decision, Outcome, PageSnapshot, Rules
from reelqueue.queue import TaskRecord
from reelqueue.statuses import SHORT_LABELS, Kind, StatusTable
from tests.ingest.test_reactions import page as reaction_page

TABLE = StatusTable()
SHORT = StatusTable(SHORT_LABELS)
CHANNELS = Channels(
    channels=(
        Channel(id="science", name="Science"),
        Channel(id="history", name="History", active=False),
    )
)
RULES = Rules(TABLE, CHANNELS)
URL = "https://youtu.be/abc123"

# Columns of the table below: where the task is, by the kind of its status.
KINDS = (
    Kind.DRAFT, Kind.WAITING, Kind.RUNNING, Kind.GATE,
    Kind.DONE, Kind.ERROR, Kind.CANCELLED, Kind.INVALID,
)  # fmt: skip
# What the creator set -> the outcome for a task of each kind, in the order of KINDS.
# "gate?" cells depend on the gate: see GATE_REVIEWS and APPROVES.
RULE_TABLE: dict[str, tuple[str, ...]] = {
    "Queued": (
        "requeued", "noop", "noop", "rejected",
        "requeued", "requeued", "requeued", "requeued",
    ),
    "Cancelled": (
        "cancelled", "cancelled", "cancelled", "cancelled",
        "too_late", "cancelled", "cancelled", "cancelled",
    ),
    "Draft": (
        "drafted", "drafted", "drafted", "drafted",
        "too_late", "drafted", "drafted", "drafted",
    ),
    "an approval": ("noop", "noop", "noop", "gate?", "noop", "noop", "noop", "noop"),
    "an error": ("noop", "noop", "noop", "gate?", "noop", "noop", "noop", "noop"),
    "a label reelqueue sets": ("noop",) * 8,
    "no status": ("unchanged",) * 8,
}  # fmt: skip
APPROVES = {
    "Assets Approved": "assets_ready",
    "Video Approved": "video_ready",
    "Audio Approved": "audio_ready",
    "Approved": "final_review",
}
# The step whose output each gate shows, and where the task waits to run it again.
GATE_REVIEWS = {
    "assets_ready": ("assets", "queued"),
    "video_ready": ("video", "composites_ready"),
    "audio_ready": ("audio", "video_approved"),
    "final_review": ("assembly", "sfx_ready"),
}
ERROR_STEPS = {
    "Asset Error": "assets",
    "Composite Error": "composites",
    "Video Error": "video",
    "Audio Error": "audio",
    "SFX Error": "sfx",
    "Assembly Error": "assembly",
    "Upload Error": "upload",
}
LABELS: list[str | None] = [*TABLE.labels, None, "Someday"]


def row_of(label: str | None) -> str:
    if label in ("Queued", "Cancelled", "Draft"):
        return label
    if label in APPROVES:
        return "an approval"
    if label in ERROR_STEPS:
        return "an error"
    if label in TABLE.labels:
        return "a label reelqueue sets"
    return "no status"


def expected(label: str | None, status: str) -> tuple[str, str | None]:
    """The outcome and the status the task moves to (None: it stays), from the table above."""
    cell = RULE_TABLE[row_of(label)][KINDS.index(TABLE[status].kind)]
    if cell == "gate?" and label in APPROVES:
        cell = "approved" if APPROVES[label] == status else "noop"
    elif cell == "gate?":
        cell = "rejected" if GATE_REVIEWS[status][0] == ERROR_STEPS[str(label)] else "noop"
    targets = {
        "requeued": "queued",
        "cancelled": "cancelled",
        "drafted": "draft",
        "approved": TABLE.status_for_label(label),
        "rejected": GATE_REVIEWS.get(status, ("", ""))[1],
    }
    return cell, targets.get(cell)


def page(status: str | None = "Queued", **changes: Any) -> PageSnapshot:
    """The page of test_reactions with a fixed id: the rules never look at the database."""
    return replace(reaction_page(status, **changes), page_id="page-1")


def task(status: str, table: StatusTable = TABLE, **changes: Any) -> TaskRecord:
    """A task at `status` whose page last showed just that."""
    youtube_url = URL if status == "published" else None
    base = TaskRecord(
        id=1,
        notion_page_id="page-1",
        data_source_id="ds-1",
        channel="science",
        title="Why the sky is blue",
        topic="Rayleigh scattering",
        story_direction="",
        priority=1,
        status=status,
        attempts=0,
        error_log="",
        youtube_url=youtube_url,
        resume_step=None,
        notion_seen={
            "status": table.label(status),
            "priority": "Normal",
            "error_log": "",
            "youtube_url": youtube_url,
        },
        step_attempts=0,
        outputs={},
        page_missing=None,
        version=1,
        updated_at=datetime(2026, 11, 24, 11, 0, tzinfo=UTC),
    )
    return replace(base, **changes)


def test_the_table_covers_every_kind_of_status() -> None:
    assert {row.kind for row in TABLE} == set(KINDS)
    assert set(GATE_REVIEWS) == set(TABLE.statuses_of(Kind.GATE))


@pytest.mark.parametrize("label", LABELS)
def test_each_label_set_on_a_task_anywhere_decides_as_the_table_says(label: str | None) -> None:
    for row in TABLE:
        if TABLE.label(row.status) == label:
            continue
        decision = RULES.decide(page(label), task(row.status))
        outcome, target = expected(label, row.status)
        where = f"{label} set on a task at {row.status}"
        assert (decision.outcome.value, decision.target) == (outcome, target), where
        assert decision.values["notion_seen"]["status"] == label, where
        final = decision.target or row.status
        if outcome == "unchanged":
            assert not decision.push, f"{where}: a label of no status is left on the page"
        else:
            assert decision.push == (TABLE.label(final) != label), (
                f"{where}: push-back writes the page exactly when it shows something else"
            )


@pytest.mark.parametrize(
    ("status", "resume"),
    [
        ("draft", None),
        ("published", None),
        ("cancelled", None),
        ("invalid", None),
        ("video_error", "video"),
        ("upload_error", "upload"),
    ],
)
def test_requeue_starts_again_and_an_error_resumes_at_its_step(
    status: str, resume: str | None
) -> None:
    edited = page(title="A better title", story_direction="Slow and calm", error_log="boom")
    decision = RULES.decide(edited, task(status, attempts=3, error_log="boom"))
    assert (decision.outcome, decision.target) == (Outcome.REQUEUED, "queued")
    assert decision.values["resume_step"] == resume
    assert decision.values["title"] == "A better title"
    assert decision.values["story_direction"] == "Slow and calm"
    assert decision.values["attempts"] == 0
    assert decision.values["error_log"] == ""
    assert decision.values.get("youtube_url") is None
    assert ("youtube_url" in decision.values) == (resume is None), (
        "a fresh run forgets the old video; a resumed one keeps it"
    )
    assert decision.push, "the page's Error Log still says boom"


def test_requeue_of_an_entry_still_invalid_keeps_it_invalid_with_why() -> None:
    decision = RULES.decide(page(topic=""), task("invalid"))
    assert (decision.outcome, decision.target) == (Outcome.INVALID, "invalid")
    assert decision.reason.startswith("Topic is empty")
    assert decision.values["error_log"] == decision.reason
    assert decision.push, "the page shows Queued; it must show Invalid Input and why"


@pytest.mark.parametrize("gate", list(GATE_REVIEWS))
@pytest.mark.parametrize("how", ["Queued", "error"])
def test_rejecting_at_a_gate_redoes_the_step_it_shows(gate: str, how: str) -> None:
    step, waits_at = GATE_REVIEWS[gate]
    label = "Queued" if how == "Queued" else TABLE.label(TABLE.error_for_step(step))
    decision = RULES.decide(page(label), task(gate, step_attempts=2, error_log="old"))
    assert (decision.outcome, decision.target) == (Outcome.REJECTED, waits_at)
    assert decision.values["step_attempts"] == 0
    assert decision.values["error_log"] == ""
    assert decision.values["resume_step"] == (step if waits_at == "queued" else None)
    assert decision.reason == f"{label} set at {TABLE.label(gate)} in Notion: {step} is redone"


@pytest.mark.parametrize("label", ["Cancelled", "Draft"])
def test_a_cancel_after_publishing_stays_published_and_says_where(label: str) -> None:
    decision = RULES.decide(page(label), task("published"))
    assert (decision.outcome, decision.target) == (Outcome.TOO_LATE, None)
    assert decision.values["error_log"] == (
        f"{label} was set after the video was published, so it stays Published: {URL}"
    )
    assert decision.push


def test_cancelling_forgets_where_an_error_would_resume() -> None:
    decision = RULES.decide(page("Cancelled"), task("video_error", resume_step="video"))
    assert decision.values["resume_step"] is None


def test_a_priority_edit_reprioritises_without_moving_the_task() -> None:
    decision = RULES.decide(
        page("Generating Video", priority_label="✹ High"), task("generating_video")
    )
    assert decision == Decision(
        Outcome.REPRIORITISED,
        decision.reason,
        values={"notion_seen": decision.values["notion_seen"], "priority": 0},
    )


def test_a_priority_edit_comes_along_with_a_status_edit() -> None:
    decision = RULES.decide(page("Cancelled", priority_label="Low"), task("queued"))
    assert (decision.outcome, decision.values["priority"]) == (Outcome.CANCELLED, 2)


def test_a_published_task_keeps_its_priority() -> None:
    decision = RULES.decide(page("Published", priority_label="High"), task("published"))
    assert decision.outcome is Outcome.UNCHANGED
    assert "priority" not in decision.values


def test_a_page_as_last_seen_writes_nothing() -> None:
    decision = RULES.decide(page("Generating Video"), task("generating_video"))
    assert decision.outcome is Outcome.UNCHANGED
    assert not decision.changes_task
    assert not decision.push


def test_a_page_seen_again_with_another_error_log_is_only_remembered() -> None:
    decision = RULES.decide(page("Generating Video", error_log="a note"), task("generating_video"))
    assert decision.outcome is Outcome.UNCHANGED
    assert decision.changes_task
    assert decision.target is None
    assert decision.values == {
        "notion_seen": {**task("generating_video").notion_seen, "error_log": "a note"}
    }
    assert not decision.push


def test_a_valid_queued_page_without_a_task_creates_one() -> None:
    decision = RULES.decide(page(priority_label="Low"), None)
    assert (decision.outcome, decision.target) == (Outcome.CREATED, "queued")
    assert decision.values["priority"] == 2
    assert decision.values["error_log"] == ""
    assert not decision.push, "the page already says Queued"


def test_an_invalid_queued_page_without_a_task_creates_an_invalid_one() -> None:
    decision = RULES.decide(page(channel="history"), None)
    assert (decision.outcome, decision.target) == (Outcome.INVALID, "invalid")
    assert "Channel 'history' is inactive" in decision.values["error_log"]
    assert decision.push


@pytest.mark.parametrize(
    "snapshot",
    [page("Draft"), page("Video Approved"), page(None), page("Someday"), page(in_trash=True)],
)
def test_a_page_without_a_task_not_set_to_queued_is_ignored(snapshot: PageSnapshot) -> None:
    decision = RULES.decide(snapshot, None)
    assert decision.outcome is Outcome.IGNORED
    assert not decision.changes_task


def test_a_channel_of_another_live_deployment_is_left_to_it() -> None:
    rules = Rules(TABLE, CHANNELS, lambda: frozenset({"cooking"}))
    assert rules.decide(page(channel="cooking"), None).outcome is Outcome.IGNORED
    assert rules.decide(page(channel="gardening"), None).outcome is Outcome.INVALID


@pytest.mark.parametrize("status", [s for s in SHORT_LABELS if SHORT.is_shown_only(s)])
def test_a_shared_label_read_back_asks_nothing(status: str) -> None:
    rules = Rules(SHORT, CHANNELS)
    decision = rules.decide(
        page("In progress"), task(status, SHORT, notion_seen={"status": "Queued"})
    )
    assert (decision.outcome, decision.target) == (Outcome.UNCHANGED, None)


_TEXT = st.one_of(st.none(), st.text(max_size=40), st.sampled_from(TABLE.labels))


@given(
    table=st.sampled_from([TABLE, SHORT]),
    label=_TEXT,
    seen=_TEXT,
    priority=_TEXT,
    status=st.sampled_from([row.status for row in TABLE]),
    channel=st.one_of(st.none(), st.sampled_from(["science", "history", "cooking"]), st.text()),
    title=st.text(max_size=120),
)
def test_any_page_read_gives_a_decision_and_an_unknown_label_moves_nothing(
    table: StatusTable,
    label: str | None,
    seen: str | None,
    priority: str | None,
    status: str,
    channel: str | None,
    title: str,
) -> None:
    rules = Rules(table, CHANNELS)
    snapshot = page(label, priority_label=priority, channel=channel, title=title)
    known = task(status, table, notion_seen={"status": seen, "priority": "Normal"})
    decision = rules.decide(snapshot, known)
    assert decision.target is None or decision.target in table
    if table.status_for_label(label) is None:
        assert decision.target is None
        assert decision.outcome in (Outcome.UNCHANGED, Outcome.REPRIORITISED)
    if decision.target is None and decision.outcome is not Outcome.TOO_LATE:
        assert "error_log" not in decision.values, "only a move or a late edit rewrites it"
    fresh = rules.decide(snapshot, None)
    if table.status_for_label(label) != "queued":
        assert (fresh.outcome, fresh.target) == (Outcome.IGNORED, None)
    else:
        assert fresh.target == ("queued" if fresh.outcome is Outcome.CREATED else "invalid")
