"""The status table: complete, consistent, and the same vocabulary for every reader."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelqueue.statuses import GATES, STEPS, Kind, StatusTable, UnknownStatusLabel

TABLE = StatusTable()


def test_the_design_vocabulary_has_31_statuses_with_distinct_labels() -> None:
    rows = list(TABLE)
    assert len(rows) == 31
    assert len({row.label for row in rows}) == 31
    assert TABLE.label("claimed") == "Processing"
    assert TABLE.label("invalid") == "Invalid Input"
    assert TABLE.status_for_label("Generating SFX") == "generating_sfx"
    assert TABLE.status_for_label(" Queued ") == "queued"
    assert TABLE.status_for_label("Someday") is None
    assert TABLE.status_for_label(None) is None


def test_every_running_status_has_an_error_exit_that_is_an_error() -> None:
    for row in TABLE:
        if row.kind is Kind.RUNNING:
            assert row.error is not None, row.status
            assert TABLE[row.error].kind is Kind.ERROR
            assert TABLE[row.error].step == row.step


def test_every_exit_names_a_real_status() -> None:
    for row in TABLE:
        for target in (row.next, row.error, row.approval):
            assert target is None or target in TABLE, (row.status, target)


def test_following_next_from_queued_walks_every_step_and_gate_to_published() -> None:
    seen_steps: list[str] = []
    seen_gates: list[str] = []
    status: str | None = "queued"
    visited: set[str] = set()
    while status is not None:
        assert status not in visited, f"loop at {status}"
        visited.add(status)
        row = TABLE[status]
        if row.kind is Kind.RUNNING and row.step and row.step not in seen_steps:
            seen_steps.append(row.step)
        if row.kind is Kind.GATE:
            assert row.gate is not None
            seen_gates.append(row.gate)
            assert row.approval == row.next
        status = row.next
    assert seen_steps == list(STEPS)
    assert seen_gates == list(GATES)
    assert "published" in visited


def test_active_and_requeueable_split_every_status() -> None:
    for row in TABLE:
        assert TABLE.is_active(row.status) != TABLE.is_requeueable(row.status), row.status
    assert TABLE.is_active("queued")
    assert TABLE.is_active("uploading")
    assert TABLE.is_active("final_review")
    for status in ("draft", "published", "cancelled", "invalid", "video_error"):
        assert TABLE.is_requeueable(status)


def test_gates_and_their_approvals() -> None:
    assert [TABLE.gate_status(g).status for g in GATES] == [
        "assets_ready",
        "video_ready",
        "audio_ready",
        "final_review",
    ]
    gate = TABLE.gate_for_approval("video_approved")
    assert gate is not None
    assert gate.status == "video_ready"
    assert TABLE.gate_for_approval("queued") is None
    assert TABLE.error_for_step("upload") == "upload_error"


def test_label_overrides_apply() -> None:
    table = StatusTable({"queued": "Ready to produce", "published": "Live"})
    assert table.label("queued") == "Ready to produce"
    assert table.status_for_label("Ready to produce") == "queued"
    assert table.status_for_label("Queued") is None
    assert "Live" in table.labels


def test_an_unknown_status_in_overrides_is_a_clear_error() -> None:
    with pytest.raises(UnknownStatusLabel, match="'queud' is not a status"):
        StatusTable({"queud": "Ready"})


def test_two_statuses_cannot_share_a_label() -> None:
    with pytest.raises(UnknownStatusLabel, match="share the label 'Draft'"):
        StatusTable({"queued": "Draft"})


@given(st.text(max_size=40))
def test_any_label_maps_to_a_status_or_none(label: str) -> None:
    status = TABLE.status_for_label(label)
    assert status is None or TABLE.label(status) == label.strip()
