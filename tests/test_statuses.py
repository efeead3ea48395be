"""The status table: complete, consistent, and the same vocabulary for every reader."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelqueue.statuses import (
    GATES,
    SHORT_LABELS,
    STATUS_GROUPS,
    STEPS,
    Kind,
    StatusTable,
    UnknownStatusLabel,
)

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


def test_a_label_the_creator_sets_cannot_be_shared() -> None:
    with pytest.raises(UnknownStatusLabel, match=r"'Draft' \(draft, queued\)"):
        StatusTable({"queued": "Draft"})


@pytest.mark.parametrize(
    "overrides",
    [
        {"generating_video": "Video Ready"},  # a gate
        {"generating_video": "Video Approved"},  # an approval
        {"generating_video": "Video Error"},  # an error she re-queues from
        {"generating_video": "Cancelled"},
        {"composites_ready": "Queued"},
        {"published": "In progress", "claimed": "In progress"},
    ],
)
def test_a_shown_status_cannot_take_a_label_that_needs_to_stay_its_own(
    overrides: dict[str, str],
) -> None:
    with pytest.raises(UnknownStatusLabel, match="needs its own label") as caught:
        StatusTable(overrides)
    assert "\n" not in str(caught.value)
    for label in overrides.values():
        assert repr(label) in str(caught.value)


def test_the_short_label_set_has_21_labels_and_reads_back_what_the_creator_sets() -> None:
    table = StatusTable(SHORT_LABELS)
    assert len(table.labels) == 21
    assert table.labels[:3] == ["Not started", "Queued", "In progress"]
    assert "Done" in table.labels
    assert table.label("generating_video") == table.label("sfx_ready") == "In progress"
    assert table.status_for_label("In progress") is None
    assert table.statuses_for_label("In progress")[:2] == ["claimed", "generating_assets"]
    for status in ("queued", "draft", "cancelled", "assets_approved", "approved", "video_error"):
        assert table.status_for_label(table.label(status)) == status
    for gate in GATES:
        row = table.gate_status(gate)
        assert table.status_for_label(row.label) == row.status


def test_only_running_and_non_gate_ready_statuses_are_shown_only() -> None:
    shown = {row.status for row in TABLE if TABLE.is_shown_only(row.status)}
    assert shown == set(TABLE.statuses_of(Kind.RUNNING)) | {
        "composites_ready",
        "sfx_ready",
        "assembly_ready",
    }


def test_every_label_has_its_notion_status_group() -> None:
    table = StatusTable(SHORT_LABELS)
    assert table.group("Not started") == table.group("Queued") == "To-do"
    assert table.group("In progress") == table.group("Final Review") == "In progress"
    assert table.group("Done") == table.group("Upload Error") == "Complete"
    assert table.group("Cancelled") == table.group("Invalid Input") == "Complete"
    assert {table.group(label) for label in table.labels} == set(STATUS_GROUPS)


@given(
    st.dictionaries(
        st.sampled_from([row.status for row in TABLE]),
        st.sampled_from(["In progress", "Busy", "Queued", "Video Ready", "Done"]),
        max_size=12,
    )
)
def test_any_overrides_either_fail_naming_the_clash_or_read_back_unambiguously(
    overrides: dict[str, str],
) -> None:
    labels = {row.status: overrides.get(row.status, row.label) for row in TABLE}
    sharers: dict[str, list[str]] = {}
    for status, label in labels.items():
        sharers.setdefault(label, []).append(status)
    clash = any(
        len(statuses) > 1 and not all(TABLE.is_shown_only(s) for s in statuses)
        for statuses in sharers.values()
    )
    if clash:
        with pytest.raises(UnknownStatusLabel, match="needs its own label"):
            StatusTable(overrides)
        return
    table = StatusTable(overrides)
    assert len(table.labels) == len(set(table.labels))
    for row in table:
        back = table.status_for_label(row.label)
        if table.is_shown_only(row.status):
            assert back in {row.status, None}
        else:
            assert back == row.status


@given(st.text(max_size=40))
def test_any_label_maps_to_a_status_or_none(label: str) -> None:
    status = TABLE.status_for_label(label)
    assert status is None or TABLE.label(status) == label.strip()
