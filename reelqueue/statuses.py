"""The one status vocabulary: each internal status, its Notion label, kind, and exits.

Ingest reads labels into statuses, workers follow `next` and `error`, push-back writes
labels; all of them use this table, so a status means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from reelqueue.errors import UserError

__all__ = [
    "DEFAULT_ROWS",
    "GATES",
    "NAMED_STATUSES",
    "PRIORITIES",
    "SHORT_LABELS",
    "STATUS_GROUPS",
    "STEPS",
    "Kind",
    "StatusInfo",
    "StatusTable",
    "UnknownStatusLabel",
    "check_rows",
    "priority_label",
]


class Kind(StrEnum):
    """What a status means for the queue."""

    DRAFT = "draft"
    WAITING = "waiting"
    RUNNING = "running"
    GATE = "gate"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"
    INVALID = "invalid"


@dataclass(frozen=True)
class StatusInfo:
    """One row of the table.

    `step` is the pipeline step a WAITING status starts or a RUNNING status runs;
    `next` is where success leads; `error` is the exit on failure; `gate` names the
    review gate a GATE status waits at, and `approval` is the status that opens it.
    """

    status: str
    label: str
    kind: Kind
    step: str | None = None
    next: str | None = None
    error: str | None = None
    gate: str | None = None
    approval: str | None = None


PRIORITIES: Mapping[str, int] = {"High": 0, "Normal": 1, "Low": 2}


def priority_label(priority: int) -> str:
    """The Notion label of a numeric priority (lower runs first)."""
    return next((label for label, value in PRIORITIES.items() if value == priority), "Normal")


_W, _R, _G = Kind.WAITING, Kind.RUNNING, Kind.GATE
DEFAULT_ROWS: tuple[StatusInfo, ...] = (
    StatusInfo("draft", "Draft", Kind.DRAFT),
    StatusInfo("queued", "Queued", _W, step="assets", next="claimed"),
    StatusInfo("claimed", "Processing", _R, step="assets", next="generating_assets",
               error="asset_error"),
    StatusInfo("generating_assets", "Generating Assets", _R, step="assets", next="assets_ready",
               error="asset_error"),
    StatusInfo("assets_ready", "Assets Ready", _G, gate="assets", next="assets_approved",
               approval="assets_approved"),
    StatusInfo("assets_approved", "Assets Approved", _W, step="composites",
               next="generating_composites"),
    StatusInfo("generating_composites", "Generating Composites", _R, step="composites",
               next="composites_ready", error="composite_error"),
    StatusInfo("composites_ready", "Composites Ready", _W, step="video",
               next="generating_video"),
    StatusInfo("generating_video", "Generating Video", _R, step="video", next="video_ready",
               error="video_error"),
    StatusInfo("video_ready", "Video Ready", _G, gate="video", next="video_approved",
               approval="video_approved"),
    StatusInfo("video_approved", "Video Approved", _W, step="audio", next="generating_audio"),
    StatusInfo("generating_audio", "Generating Audio", _R, step="audio", next="audio_ready",
               error="audio_error"),
    StatusInfo("audio_ready", "Audio Ready", _G, gate="audio", next="audio_approved",
               approval="audio_approved"),
    StatusInfo("audio_approved", "Audio Approved", _W, step="sfx", next="generating_sfx"),
    StatusInfo("generating_sfx", "Generating SFX", _R, step="sfx", next="sfx_ready",
               error="sfx_error"),
    StatusInfo("sfx_ready", "SFX Ready", _W, step="assembly", next="assembling"),
    StatusInfo("assembling", "Assembling", _R, step="assembly", next="assembly_ready",
               error="assembly_error"),
    StatusInfo("assembly_ready", "Assembly Ready", _W, next="final_review"),
    StatusInfo("final_review", "Final Review", _G, gate="final", next="approved",
               approval="approved"),
    StatusInfo("approved", "Approved", _W, step="upload", next="uploading"),
    StatusInfo("uploading", "Uploading", _R, step="upload", next="published",
               error="upload_error"),
    StatusInfo("published", "Published", Kind.DONE),
    StatusInfo("asset_error", "Asset Error", Kind.ERROR, step="assets"),
    StatusInfo("composite_error", "Composite Error", Kind.ERROR, step="composites"),
    StatusInfo("video_error", "Video Error", Kind.ERROR, step="video"),
    StatusInfo("audio_error", "Audio Error", Kind.ERROR, step="audio"),
    StatusInfo("sfx_error", "SFX Error", Kind.ERROR, step="sfx"),
    StatusInfo("assembly_error", "Assembly Error", Kind.ERROR, step="assembly"),
    StatusInfo("upload_error", "Upload Error", Kind.ERROR, step="upload"),
    StatusInfo("cancelled", "Cancelled", Kind.CANCELLED),
    StatusInfo("invalid", "Invalid Input", Kind.INVALID),
)  # fmt: skip


# Notion's status groups, in board order (a status-type Status files every option in one).
STATUS_GROUPS: tuple[str, ...] = ("To-do", "In progress", "Complete")


class UnknownStatusLabel(UserError):
    """A label override names no status, or a label is shared by a status that needs its own."""


def _shown_only(row: StatusInfo, rows: Mapping[str, StatusInfo]) -> bool:
    """A status reelqueue sets and the creator only looks at: running, or ready but no gate."""
    if row.kind is Kind.RUNNING:
        return True
    approvals = {r.approval for r in rows.values() if r.approval}
    return row.kind is Kind.WAITING and row.status != "queued" and row.status not in approvals


_ROWS = {row.status: row for row in DEFAULT_ROWS}

# The shortest working label set: every status only shown shares "In progress", and
# Notion's default options of a new status property ("Not started", "In progress", "Done")
# stand for draft, those statuses and published. The other 18 labels stay as they are.
SHORT_LABELS: Mapping[str, str] = {
    "draft": "Not started",
    **{status: "In progress" for status, row in _ROWS.items() if _shown_only(row, _ROWS)},
    "published": "Done",
}


# Statuses the code names: where a task starts, ends, and goes when stopped.
NAMED_STATUSES: tuple[str, ...] = ("draft", "queued", "published", "cancelled", "invalid")


def _steps_in_order(rows: Iterable[StatusInfo]) -> tuple[str, ...]:
    return tuple(
        dict.fromkeys(r.step for r in rows if r.step and r.kind in {Kind.WAITING, Kind.RUNNING})
    )


def check_rows(rows: Sequence[StatusInfo]) -> None:
    """Refuse a vocabulary the queue cannot run: a duplicate or dangling status, a step
    without a status to wait in, one to run in and one to fail to, or a gate that nothing
    opens."""
    statuses = [row.status for row in rows]
    problems = [f"{s!r} is listed twice" for s in dict.fromkeys(statuses) if statuses.count(s) > 1]
    known = set(statuses)
    problems += [f"the vocabulary lacks {s!r}" for s in NAMED_STATUSES if s not in known]
    for row in rows:
        for exit_name in ("next", "error", "approval"):
            target = getattr(row, exit_name)
            if target is not None and target not in known:
                problems.append(f"{row.status!r}'s {exit_name} {target!r} is no status")
        if row.kind is Kind.GATE and (row.gate is None or row.approval is None):
            problems.append(f"gate {row.status!r} needs a gate name and an approval status")
    for step in _steps_in_order(rows):
        for kind in (Kind.WAITING, Kind.RUNNING, Kind.ERROR):
            if not any(r.step == step and r.kind is kind for r in rows):
                problems.append(f"step {step!r} has no {kind.value} status")
    if problems:
        raise ValueError("status vocabulary: " + "; ".join(problems))


class StatusTable:
    """The status vocabulary (`rows`, by default the one above) with the deployment's
    label overrides applied.

    Statuses the creator only looks at (running ones, and ready ones that are no gate) may
    share a label; every label she sets (Queued, an approval, Cancelled, Draft, an error to
    re-queue from) and every gate keeps its own, so reading a label back is never ambiguous
    where it matters.
    """

    def __init__(
        self,
        overrides: Mapping[str, str] | None = None,
        *,
        rows: Sequence[StatusInfo] = DEFAULT_ROWS,
    ) -> None:
        check_rows(rows)
        self.steps: tuple[str, ...] = _steps_in_order(rows)
        self.gates: tuple[str, ...] = tuple(r.gate for r in rows if r.gate)
        by_status = {row.status: row for row in rows}
        for status, label in (overrides or {}).items():
            if status not in by_status:
                known = ", ".join(by_status)
                raise UnknownStatusLabel(
                    f"REELQUEUE_STATUS_LABELS: {status!r} is not a status; use one of {known}"
                )
            if not label.strip():
                raise UnknownStatusLabel(
                    f"REELQUEUE_STATUS_LABELS: the label of {status!r} is empty"
                )
            by_status[status] = replace(by_status[status], label=label.strip())
        by_label: dict[str, list[str]] = {}
        for row in by_status.values():
            by_label.setdefault(row.label, []).append(row.status)
        clashes = [
            f"{label!r} ({', '.join(statuses)})"
            for label, statuses in by_label.items()
            if len(statuses) > 1 and not all(_shown_only(by_status[s], by_status) for s in statuses)
        ]
        if clashes:
            raise UnknownStatusLabel(
                "REELQUEUE_STATUS_LABELS: these labels are shared by a status the creator sets "
                "or a gate, which needs its own label: " + "; ".join(clashes)
                + " (only running statuses and ready statuses that are no gate may share one)"
            )  # fmt: skip
        self._rows = by_status
        self._by_label = by_label
        self.running = frozenset(self.statuses_of(Kind.RUNNING))
        self.runnable: tuple[str, ...] = tuple(self.statuses_of(Kind.WAITING))

    def __iter__(self) -> Iterator[StatusInfo]:
        return iter(self._rows.values())

    def __getitem__(self, status: str) -> StatusInfo:
        return self._rows[status]

    def __contains__(self, status: object) -> bool:
        return status in self._rows

    @property
    def labels(self) -> list[str]:
        """Every distinct Notion label, in pipeline order (for `notion setup`)."""
        return list(self._by_label)

    def label(self, status: str) -> str:
        """The Notion label of an internal status."""
        return self._rows[status].label

    def status_for_label(self, label: str | None) -> str | None:
        """The status a label stands for; None for an unknown or a shared label.

        A shared label is only ever shown (reelqueue writes it), so reading it back from
        Notion asks nothing of reelqueue.
        """
        if label is None:
            return None
        statuses = self._by_label.get(label.strip(), [])
        return statuses[0] if len(statuses) == 1 else None

    def statuses_for_label(self, label: str) -> list[str]:
        """Every status shown with this label, in pipeline order (more than one if shared)."""
        return list(self._by_label.get(label.strip(), []))

    def is_shown_only(self, status: str) -> bool:
        """Whether the creator only looks at this status, so its label may be shared."""
        return _shown_only(self._rows[status], self._rows)

    def group(self, label: str) -> str:
        """The Notion status group a label belongs in: To-do, In progress or Complete."""
        kind = self._rows[self._by_label[label.strip()][0]].kind
        if kind is Kind.DRAFT or self._by_label[label.strip()] == ["queued"]:
            return STATUS_GROUPS[0]
        if kind in {Kind.WAITING, Kind.RUNNING, Kind.GATE}:
            return STATUS_GROUPS[1]
        return STATUS_GROUPS[2]

    def groups(self) -> dict[str, str]:
        """Each label's Notion status group, in pipeline order: the board a calendar needs."""
        return {label: self.group(label) for label in self.labels}

    def is_active(self, status: str) -> bool:
        """Queued through uploading: a second Queued for it is a no-op."""
        return self._rows[status].kind in {Kind.WAITING, Kind.RUNNING, Kind.GATE}

    def is_requeueable(self, status: str) -> bool:
        """Draft, published, cancelled, invalid and every error: Queued starts it again."""
        kind = self._rows[status].kind
        return kind in {Kind.DRAFT, Kind.DONE, Kind.CANCELLED, Kind.INVALID, Kind.ERROR}

    def statuses_of(self, *kinds: Kind) -> list[str]:
        """Every status of the given kinds, in pipeline order."""
        return [row.status for row in self._rows.values() if row.kind in kinds]

    def gate_for_approval(self, status: str) -> StatusInfo | None:
        """The gate status an approval status opens, or None if it is no approval."""
        return next((row for row in self._rows.values() if row.approval == status), None)

    def gate_status(self, gate: str) -> StatusInfo:
        """The status that waits at a named gate (assets, video, audio, final)."""
        return next(row for row in self._rows.values() if row.gate == gate)

    def error_for_step(self, step: str) -> str:
        """The error status of a pipeline step."""
        return next(
            r.status for r in self._rows.values() if r.kind is Kind.ERROR and r.step == step
        )

    def waiting_status_for(self, step: str) -> str:
        """The runnable status that starts a step (where a retried step waits)."""
        return next(r.status for r in self if r.kind is Kind.WAITING and r.step == step)

    def running_status_for(self, step: str) -> str:
        """The status a task shows while the step runs: the last running one of its chain
        (queued passes through `claimed` on paper; a claim moves it straight on)."""
        return next(
            r.status
            for r in self
            if r.kind is Kind.RUNNING and r.step == step and r.next not in self.running
        )


STEPS: tuple[str, ...] = StatusTable().steps
GATES: tuple[str, ...] = StatusTable().gates
