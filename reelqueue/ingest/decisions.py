"""The ingest rules as a table: what a page read does to its task, decided without a database.

For each page the decision depends on what the creator set (a Status label, read into
what it asks for: `Wanted`) and where the task is (none yet, or its status's `Kind`).
`Rules.decide` reads top to bottom: a page never seen, then a page as last seen, then
a Priority edit, then one row per (what was set, where the task is). The caller stores
the decision; nothing here reads or writes anything.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from reelqueue.config import Channels
from reelqueue.ingest.snapshot import PageSnapshot
from reelqueue.ingest.validation import invalid_reason
from reelqueue.queue import TaskRecord, fields_to_write, page_fields
from reelqueue.statuses import PRIORITIES, Kind, StatusTable

__all__ = [
    "DEFAULT_PRIORITY",
    "Decision",
    "Outcome",
    "Rules",
    "Wanted",
    "late_edit_log",
    "parse_priority",
    "seen_on",
]

DEFAULT_PRIORITY = PRIORITIES["Normal"]


class Outcome(StrEnum):
    """What a page read did, by the name the reaction summary counts it under."""

    CREATED = "created"
    INVALID = "invalid"
    IGNORED = "ignored"
    UNCHANGED = "unchanged"
    REPRIORITISED = "reprioritised"
    NOOP = "noop"
    REQUEUED = "requeued"
    CANCELLED = "cancelled"
    DRAFTED = "drafted"
    APPROVED = "approved"
    REJECTED = "rejected"
    TOO_LATE = "too_late"
    STALE = "stale"
    """Left for a later read: one of our writes reached the page after the read began."""
    RACED = "raced"
    """A new task another transaction created first."""
    REFUSED = "refused"
    """The database would not store the page, and it asked for nothing to be stored."""


class Wanted(StrEnum):
    """What the Status label the creator set asks of reelqueue."""

    UNKNOWN = "unknown"
    """No label, a label of no status, or a label shared by statuses only shown."""
    QUEUED = "queued"
    CANCELLED = "cancelled"
    DRAFT = "draft"
    APPROVAL = "approval"
    ERROR = "error"
    BY_REELQUEUE = "by_reelqueue"
    """A status only reelqueue sets: running, ready, a gate, Published, Invalid Input."""


@dataclass(frozen=True)
class Decision:
    """What one page read does to its task.

    `target` is the status the task moves to (None: it stays; for a page without a task,
    the status of the task to create, or None to create none); `values` are the columns
    to set (for a new task, its columns); `push` asks push-back to write the page.
    """

    outcome: Outcome
    reason: str
    target: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    push: bool = False

    @property
    def changes_task(self) -> bool:
        """Whether the task row (or a new one) is written at all."""
        return self.target is not None or bool(self.values)


def parse_priority(label: str | None) -> int:
    """High, Normal or Low from a Priority label (decorations like '✹ High' allowed)."""
    if not label:
        return DEFAULT_PRIORITY
    words = label.casefold()
    for name, value in PRIORITIES.items():
        if name.casefold() in words:
            return value
    return DEFAULT_PRIORITY


def late_edit_log(previous: str, label: str, shown: str, youtube_url: str | None) -> str:
    """The Error Log after a `label` edit came too late: earlier lines kept, this one once."""
    where = youtube_url or "no video URL was recorded"
    line = f"{label} was set after the video was published, so it stays {shown}: {where}"
    kept = [old for old in previous.splitlines() if old.strip() and old != line]
    return "\n".join([*kept, line])


def seen_on(page: PageSnapshot) -> dict[str, Any]:
    """The page's values a task remembers, to tell the creator's next edit from no edit."""
    return {
        "status": page.status_label,
        "priority": page.priority_label,
        "error_log": page.error_log,
        "youtube_url": page.youtube_url,
    }


class Rules:
    """The ingest rules under one deployment's vocabulary and channels."""

    def __init__(
        self,
        table: StatusTable,
        channels: Channels,
        foreign_channels: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        self._table = table
        self._channels = channels
        self._foreign = foreign_channels

    def wanted(self, label: str | None) -> Wanted:
        """What a Status label asks of reelqueue."""
        status = self._table.status_for_label(label)
        if status is None:
            return Wanted.UNKNOWN
        if status in ("queued", "cancelled", "draft"):
            return Wanted(status)
        if self._table.gate_for_approval(status) is not None:
            return Wanted.APPROVAL
        if self._table[status].kind is Kind.ERROR:
            return Wanted.ERROR
        return Wanted.BY_REELQUEUE

    def decide(self, page: PageSnapshot, task: TaskRecord | None) -> Decision:
        """What this read of the page does to its task (or to the task it may create)."""
        if task is None:
            return self._new(page)
        seen = task.notion_seen
        if seen.get("status") == page.status_label and seen.get("priority") == page.priority_label:
            now = seen_on(page)
            recorded: dict[str, Any] = {"notion_seen": now} if seen != now else {}
            return Decision(Outcome.UNCHANGED, "Status and Priority as last seen", values=recorded)
        values: dict[str, Any] = {"notion_seen": seen_on(page)}
        priority = parse_priority(page.priority_label)
        if priority != task.priority and self._table[task.status].kind is not Kind.DONE:
            values["priority"] = priority
        wanted = self._table.status_for_label(page.status_label)
        if wanted is None or wanted == task.status or seen.get("status") == page.status_label:
            if "priority" in values:
                return Decision(Outcome.REPRIORITISED, "Priority set in Notion", values=values)
            return Decision(Outcome.UNCHANGED, "Status asks nothing new", values=values)
        move = self._move(page, task, wanted)
        merged = {**values, **move.values}
        final = move.target or task.status
        error_log = merged.get("error_log", task.error_log)
        youtube_url = merged.get("youtube_url", task.youtube_url)
        push = self._needs_push(final, error_log, youtube_url, merged["notion_seen"])
        return replace(move, values=merged, push=push)

    def _new(self, page: PageSnapshot) -> Decision:
        """A page without a task: only a valid Queued makes a queued one."""
        if page.in_trash:
            return Decision(Outcome.IGNORED, "in the trash")
        if self.wanted(page.status_label) is not Wanted.QUEUED:
            return Decision(Outcome.IGNORED, "not set to Queued")
        channel = page.channel or ""
        if channel in self._foreign() and self._channels.get(channel) is None:
            return Decision(Outcome.IGNORED, f"channel {channel} is run by another deployment")
        reason = invalid_reason(page, self._channels)
        target = "invalid" if reason else "queued"
        values: dict[str, Any] = {
            "channel": channel,
            "title": page.title,
            "topic": page.topic,
            "story_direction": page.story_direction,
            "priority": parse_priority(page.priority_label),
            "notion_seen": seen_on(page),
            "error_log": reason or "",
        }
        push = self._needs_push(target, values["error_log"], None, values["notion_seen"])
        if reason:
            return Decision(Outcome.INVALID, reason, target=target, values=values, push=push)
        why = "set to Queued in Notion"
        return Decision(Outcome.CREATED, why, target=target, values=values, push=push)

    def _move(self, page: PageSnapshot, task: TaskRecord, status: str) -> Decision:
        """A Status edit to a task elsewhere: one row per (what was set, where the task is)."""
        current = self._table[task.status]
        label = page.status_label
        at = current.label
        match self.wanted(label), current.kind:
            case Wanted.QUEUED, Kind.GATE:
                return self._redo_before_gate(task, f"{label} set at {at}")
            case Wanted.QUEUED, Kind.WAITING | Kind.RUNNING:
                return Decision(
                    Outcome.NOOP, f"already active ({at}); Queued again changes nothing"
                )
            case Wanted.QUEUED, _:
                return self._requeue(page, task)
            case Wanted.CANCELLED | Wanted.DRAFT, Kind.DONE:
                return self._too_late(page, task)
            case Wanted.CANCELLED, _:
                return Decision(
                    Outcome.CANCELLED,
                    "set to Cancelled in Notion",
                    target="cancelled",
                    values={"resume_step": None},
                )
            case Wanted.DRAFT, Kind.WAITING | Kind.RUNNING | Kind.GATE:
                return Decision(Outcome.DRAFTED, "pulled back to Draft in Notion", target="draft")
            case Wanted.DRAFT, _:
                return Decision(Outcome.DRAFTED, "set back to Draft in Notion", target="draft")
            case Wanted.APPROVAL, Kind.GATE if current.approval == status:
                return Decision(Outcome.APPROVED, f"{label} set in Notion", target=status)
            case Wanted.APPROVAL, _:
                return Decision(Outcome.NOOP, f"{label} does not apply: the task is at {at}")
            case Wanted.ERROR, Kind.GATE if self._rejects(status, task.status):
                return self._redo_before_gate(task, f"{label} set at {at}")
            case _:
                return Decision(
                    Outcome.NOOP,
                    f"{label} is set by reelqueue, not by hand; the task is at {at}",
                )

    def _too_late(self, page: PageSnapshot, task: TaskRecord) -> Decision:
        """A cancel (or Draft) reached us after publishing: the page says so and where it is."""
        label = page.status_label or ""
        shown = self._table.label(task.status)
        where = task.youtube_url or "no video URL was recorded"
        return Decision(
            Outcome.TOO_LATE,
            f"{page.status_label} came after publishing; the video is at {where}",
            values={"error_log": late_edit_log(task.error_log, label, shown, task.youtube_url)},
        )

    def _requeue(self, page: PageSnapshot, task: TaskRecord) -> Decision:
        """Queued on a task at rest: checked again, then started again (an error resumes)."""
        values: dict[str, Any] = {
            "title": page.title,
            "topic": page.topic,
            "story_direction": page.story_direction,
            "channel": page.channel or "",
            "attempts": 0,
        }
        reason = invalid_reason(page, self._channels)
        if reason:
            values["error_log"] = reason
            return Decision(Outcome.INVALID, reason, target="invalid", values=values)
        row = self._table[task.status]
        values["error_log"] = ""
        if row.kind is Kind.ERROR:
            values["resume_step"] = row.step
        else:
            values["resume_step"] = None
            values["youtube_url"] = None
        why = f"re-queued from {row.label} in Notion"
        return Decision(Outcome.REQUEUED, why, target="queued", values=values)

    def _redo_before_gate(self, task: TaskRecord, why: str) -> Decision:
        """The creator rejected what a gate shows: the step before it runs again."""
        step = self._step_before(task.status)
        assert step is not None
        target = self._table.waiting_status_for(step)
        values: dict[str, Any] = {
            "resume_step": step if target == "queued" else None,
            "step_attempts": 0,
            "error_log": "",
        }
        reason = f"{why} in Notion: {step} is redone"
        return Decision(Outcome.REJECTED, reason, target=target, values=values)

    def _rejects(self, error_status: str, gate_status: str) -> bool:
        """Whether an error label names the step whose output this gate shows."""
        return self._table[error_status].step == self._step_before(gate_status)

    def _step_before(self, gate_status: str) -> str | None:
        """The step whose output a gate shows (assembly for Final Review, past Assembly Ready)."""
        status = gate_status
        while (previous := next((r for r in self._table if r.next == status), None)) is not None:
            if previous.step is not None:
                return previous.step
            status = previous.status
        return None

    def _needs_push(
        self, status: str, error_log: str | None, youtube_url: str | None, seen: Mapping[str, Any]
    ) -> bool:
        """Whether the page, as just read, differs from the task after this decision."""
        desired = page_fields(self._table, status, error_log, youtube_url)
        return bool(fields_to_write(desired, seen))
