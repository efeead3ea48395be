"""Reactions: what a creator's edit in Notion does to the queue, one transaction per batch.

Queued creates or re-queues a task (or is a logged no-op for an active one); an
invalid Queued entry becomes Invalid Input with the reason in its Error Log;
Cancelled cancels; Draft pulls an active task back; an approval label opens the
gate the task waits at; an error label at a gate rejects that step; a Priority edit
reprioritises. A page whose Status and Priority are what we last saw is skipped.

One page never stops the others: the batch runs in a savepoint, and if PostgreSQL
refuses it (for a reason other than a deadlock, which reruns the whole transaction)
each page runs again in a savepoint of its own; a page refused alone becomes Invalid
Input, its Error Log saying the entry could not be stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.config import Channels
from reelqueue.db.retry import is_retryable
from reelqueue.ingest.snapshot import PageSnapshot
from reelqueue.ingest.validation import invalid_reason
from reelqueue.notion import PageWrites
from reelqueue.queue import (
    NewTask,
    TaskChange,
    TaskRecord,
    apply_changes,
    fields_to_write,
    insert_tasks,
    load_tasks_by_page,
    page_fields,
    waiting_status_for,
)
from reelqueue.statuses import PRIORITIES, Kind, StatusTable

__all__ = ["ReactionSummary", "Reactor", "late_edit_log", "parse_priority"]

log = structlog.get_logger(__name__)

DEFAULT_PRIORITY = PRIORITIES["Normal"]


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


@dataclass
class ReactionSummary:
    """What one batch of page reads did, counted by outcome."""

    outcomes: Counter[str] = field(default_factory=Counter)
    stale: set[str] = field(default_factory=set)
    """Pages left for a later read: a write of ours to them settled after this read began."""

    def add(self, other: ReactionSummary) -> None:
        """Fold another batch's counts into this one."""
        self.outcomes.update(other.outcomes)
        self.stale |= other.stale

    def __getitem__(self, outcome: str) -> int:
        return self.outcomes[outcome]


def _seen(page: PageSnapshot) -> dict[str, Any]:
    return {
        "status": page.status_label,
        "priority": page.priority_label,
        "error_log": page.error_log,
        "youtube_url": page.youtube_url,
    }


def _first_line(exc: DBAPIError) -> str:
    """The database's own words, without the statement and its parameters."""
    orig = exc.orig if exc.orig is not None else exc
    lines = str(orig).strip().splitlines()
    return (lines[0] if lines else type(orig).__name__)[:200]


def _refused_task(page: PageSnapshot, reason: str) -> NewTask:
    """An Invalid Input task keeping none of the page's text, only why it was refused."""
    return NewTask(
        notion_page_id=page.page_id,
        data_source_id=page.data_source_id or "",
        channel="",
        title="",
        topic="",
        story_direction="",
        priority=DEFAULT_PRIORITY,
        status="invalid",
        notion_seen={"status": page.status_label, "priority": page.priority_label},
        error_log=reason,
    )


def _actor(page: PageSnapshot) -> str:
    return f"notion:{page.last_edited_by or 'unknown'}"


def _edited(page: PageSnapshot) -> datetime:
    return page.last_edited_time or datetime.min.replace(tzinfo=UTC)


def _latest_per_page(pages: Sequence[PageSnapshot]) -> list[PageSnapshot]:
    """One snapshot per page: the most recently edited (the later read on a tie)."""
    latest: dict[str, PageSnapshot] = {}
    for page in pages:
        held = latest.get(page.page_id)
        if held is None or _edited(page) >= _edited(held):
            latest[page.page_id] = page
    return list(latest.values())


class Reactor:
    """Turns page snapshots into task changes, under the deployment's vocabulary."""

    def __init__(
        self,
        table: StatusTable,
        channels: Channels,
        *,
        foreign_channels: Callable[[], Collection[str]] = frozenset,
        page_writes: PageWrites | None = None,
    ) -> None:
        self._table = table
        self._channels = channels
        self._foreign = foreign_channels
        self._writes = page_writes

    async def react(
        self,
        conn: AsyncConnection,
        pages: Sequence[PageSnapshot],
        *,
        read_at: float | None = None,
    ) -> ReactionSummary:
        """Apply one batch of page reads in the caller's transaction, each page isolated.

        `read_at` (monotonic) is when the read began: a page one of our writes reached
        after that is left out (in `stale`), since the read may show it from before.
        A deadlock (or serialization failure) is raised for the caller to run the whole
        transaction again; any other database refusal costs only the page it comes from.
        """
        batch = _latest_per_page(pages)
        try:
            async with conn.begin_nested():
                return await self._react_batch(conn, batch, read_at)
        except DBAPIError as exc:
            if is_retryable(exc):
                raise
            if len(batch) == 1:
                return await self._refused(conn, batch[0], exc)
            log.warning(
                "the database refused a batch of page reads; reacting page by page",
                pages=len(batch),
                error=_first_line(exc),
            )
        summary = ReactionSummary()
        for page in batch:
            try:
                async with conn.begin_nested():
                    summary.add(await self._react_batch(conn, [page], read_at))
            except DBAPIError as exc:
                if is_retryable(exc):
                    raise
                summary.add(await self._refused(conn, page, exc))
        return summary

    async def _refused(
        self, conn: AsyncConnection, page: PageSnapshot, exc: DBAPIError
    ) -> ReactionSummary:
        """A page the database would not take: Invalid Input with the reason, or a log line."""
        summary = ReactionSummary()
        reason = (
            "reelqueue could not store this entry: the database refused one of its values "
            f"({_first_line(exc)}). Check Title, Topic and Story Direction for unusual "
            "characters, then set Status to Queued again."
        )
        log.warning(
            "page refused by the database",
            notion_page_id=page.page_id,
            error=_first_line(exc),
        )
        wanted = self._table.status_for_label(page.status_label)
        if page.in_trash or wanted != "queued":
            summary.outcomes["refused"] += 1
            return summary
        try:
            async with conn.begin_nested():
                tasks = await load_tasks_by_page(conn, [page.page_id], lock=True)
                task = tasks.get(page.page_id)
                if task is None:
                    await insert_tasks(
                        conn,
                        [_refused_task(page, reason)],
                        actor="notion",
                        table=self._table,
                        reason="set to Queued in Notion; could not be stored",
                    )
                else:
                    await apply_changes(
                        conn,
                        [
                            TaskChange(
                                task_id=task.id,
                                notion_page_id=task.notion_page_id,
                                from_status=task.status,
                                to_status="invalid",
                                actor=_actor(page),
                                reason="set to Queued in Notion; could not be stored",
                                values={"error_log": reason, "attempts": 0},
                            )
                        ],
                    )
        except DBAPIError as again:
            if is_retryable(again):
                raise
            summary.outcomes["refused"] += 1
            return summary
        summary.outcomes["invalid"] += 1
        return summary

    async def _react_batch(
        self, conn: AsyncConnection, batch: Sequence[PageSnapshot], read_at: float | None
    ) -> ReactionSummary:
        summary = ReactionSummary()
        tasks = await load_tasks_by_page(conn, (p.page_id for p in batch), lock=True)
        writes = self._writes
        if writes is not None and read_at is not None:
            # Checked under the task locks: a write settling now records after we commit.
            summary.stale = {p.page_id for p in batch if writes.stale(p.page_id, read_at)}
            summary.outcomes["stale"] += len(summary.stale)
            batch = [p for p in batch if p.page_id not in summary.stale]
        new: list[NewTask] = []
        changes: list[TaskChange] = []
        for page in batch:
            task = tasks.get(page.page_id)
            if task is None:
                outcome = self._plan_new(page, new)
            else:
                outcome = self._plan_existing(page, task, changes)
            summary.outcomes[outcome] += 1
        created = await insert_tasks(
            conn, new, actor="notion", table=self._table, reason="set to Queued in Notion"
        )
        for task in created:
            log.info(
                "task created",
                notion_page_id=task.notion_page_id,
                task_id=task.id,
                status=task.status,
                title=task.title,
            )
        summary.outcomes["raced"] += len(new) - len(created)
        await apply_changes(conn, changes)
        return summary

    def _plan_new(self, page: PageSnapshot, new: list[NewTask]) -> str:
        if page.in_trash or self._table.status_for_label(page.status_label) != "queued":
            return "ignored"
        channel = page.channel or ""
        if channel in self._foreign() and self._channels.get(channel) is None:
            # Another live deployment runs this channel: its page, not an invalid one.
            return "ignored"
        reason = invalid_reason(page, self._channels)
        new.append(
            NewTask(
                notion_page_id=page.page_id,
                data_source_id=page.data_source_id or "",
                channel=page.channel or "",
                title=page.title,
                topic=page.topic,
                story_direction=page.story_direction,
                priority=parse_priority(page.priority_label),
                status="invalid" if reason else "queued",
                notion_seen=_seen(page),
                error_log=reason or "",
            )
        )
        if reason:
            log.info("entry is invalid", notion_page_id=page.page_id, reason=reason)
            return "invalid"
        return "created"

    def _plan_existing(
        self, page: PageSnapshot, task: TaskRecord, changes: list[TaskChange]
    ) -> str:
        seen = task.notion_seen
        if seen.get("status") == page.status_label and seen.get("priority") == page.priority_label:
            if seen != _seen(page):
                changes.append(self._record_only(page, task))
            return "unchanged"
        wanted = self._table.status_for_label(page.status_label)
        priority = parse_priority(page.priority_label)
        values: dict[str, Any] = {"notion_seen": _seen(page)}
        if priority != task.priority and self._table[task.status].kind is not Kind.DONE:
            values["priority"] = priority
            log.info(
                "task reprioritised",
                notion_page_id=page.page_id,
                task_id=task.id,
                priority=page.priority_label,
            )
        if wanted is None or wanted == task.status or seen.get("status") == page.status_label:
            changes.append(self._record_only(page, task, values))
            return "reprioritised" if "priority" in values else "unchanged"
        target, outcome, reason = self._decide(page, task, wanted, values)
        if target is None:
            log.info(
                "edit ignored",
                notion_page_id=page.page_id,
                task_id=task.id,
                label=page.status_label,
                status=task.status,
                reason=reason,
            )
        else:
            log.info(
                f"task {outcome}",
                notion_page_id=page.page_id,
                task_id=task.id,
                from_status=task.status,
                to_status=target,
            )
        final = target or task.status
        changes.append(
            TaskChange(
                task_id=task.id,
                notion_page_id=task.notion_page_id,
                from_status=task.status,
                to_status=final,
                actor=_actor(page),
                reason=reason,
                values=values,
                push=self._needs_push(task, final, values),
            )
        )
        return outcome

    def _needs_push(self, task: TaskRecord, status: str, values: dict[str, Any]) -> bool:
        """Whether the page, as just read, differs from the task after this change."""
        desired = page_fields(
            self._table,
            status,
            values.get("error_log", task.error_log),
            values.get("youtube_url", task.youtube_url),
        )
        return bool(fields_to_write(desired, values["notion_seen"]))

    def _decide(
        self, page: PageSnapshot, task: TaskRecord, wanted: str, values: dict[str, Any]
    ) -> tuple[str | None, str, str]:
        """The status the task moves to (None: stays), the outcome's name, and why."""
        current = self._table[task.status]
        label = page.status_label
        if wanted == "queued" and current.kind is Kind.GATE:
            return self._redo_before_gate(task, values, f"{label} set at {current.label}")
        if wanted == "queued":
            if self._table.is_active(task.status):
                return (
                    None,
                    "noop",
                    f"already active ({current.label}); Queued again changes nothing",
                )
            return self._requeue(page, task, values)
        if wanted in ("cancelled", "draft") and current.kind is Kind.DONE:
            return self._too_late(page, task, values)
        if wanted == "cancelled":
            values["resume_step"] = None
            return "cancelled", "cancelled", "set to Cancelled in Notion"
        if wanted == "draft":
            if not self._table.is_active(task.status):
                return "draft", "drafted", "set back to Draft in Notion"
            return "draft", "drafted", "pulled back to Draft in Notion"
        gate = self._table.gate_for_approval(wanted)
        if gate is not None:
            if task.status == gate.status:
                return wanted, "approved", f"{label} set in Notion"
            return None, "noop", f"{label} does not apply: the task is at {current.label}"
        target = self._table[wanted]
        at_gate = current.kind is Kind.GATE and target.kind is Kind.ERROR
        if at_gate and target.step == self._step_before_gate(task.status):
            return self._redo_before_gate(task, values, f"{label} set at {current.label}")
        return (
            None,
            "noop",
            f"{label} is set by reelqueue, not by hand; the task is at {current.label}",
        )

    def _too_late(
        self, page: PageSnapshot, task: TaskRecord, values: dict[str, Any]
    ) -> tuple[str | None, str, str]:
        """A cancel (or Draft) reached us after publishing: the page says so and where it is."""
        shown = self._table.label(task.status)
        values["error_log"] = late_edit_log(
            task.error_log, page.status_label or "", shown, task.youtube_url
        )
        where = task.youtube_url or "no video URL was recorded"
        return (
            None,
            "too_late",
            f"{page.status_label} came after publishing; the video is at {where}",
        )

    def _requeue(
        self, page: PageSnapshot, task: TaskRecord, values: dict[str, Any]
    ) -> tuple[str | None, str, str]:
        reason = invalid_reason(page, self._channels)
        values.update(
            title=page.title,
            topic=page.topic,
            story_direction=page.story_direction,
            channel=page.channel or "",
            attempts=0,
        )
        if reason:
            values["error_log"] = reason
            log.info("entry is invalid", notion_page_id=page.page_id, reason=reason)
            return "invalid", "invalid", reason
        kind = self._table[task.status].kind
        values["error_log"] = ""
        values["resume_step"] = self._table[task.status].step if kind is Kind.ERROR else None
        if kind is not Kind.ERROR:
            values["youtube_url"] = None
        return "queued", "requeued", f"re-queued from {self._table.label(task.status)} in Notion"

    def _redo_before_gate(
        self, task: TaskRecord, values: dict[str, Any], why: str
    ) -> tuple[str | None, str, str]:
        """The creator rejected what a gate shows: the step before it runs again."""
        step = self._step_before_gate(task.status)
        assert step is not None
        target = waiting_status_for(step)
        values.update(
            resume_step=step if target == "queued" else None, step_attempts=0, error_log=""
        )
        return target, "rejected", f"{why} in Notion: {step} is redone"

    def _step_before_gate(self, gate_status: str) -> str | None:
        """The step whose output a gate reviews (assets for Assets Ready, ...)."""
        previous = next((row for row in self._table if row.next == gate_status), None)
        return previous.step if previous is not None else None

    @staticmethod
    def _record_only(
        page: PageSnapshot, task: TaskRecord, values: dict[str, Any] | None = None
    ) -> TaskChange:
        return TaskChange(
            task_id=task.id,
            notion_page_id=task.notion_page_id,
            from_status=task.status,
            to_status=task.status,
            actor=_actor(page),
            values=values or {"notion_seen": _seen(page)},
            push=False,
        )
