"""Reactions: what a creator's edit in Notion does to the queue, one transaction per batch.

What each edit does is decided in `reelqueue.ingest.decisions` (the rules, as a
table); this module stores the decisions: new tasks, changes, history and outbox rows.

One page never stops the others: the batch runs in a savepoint, and if PostgreSQL
refuses it (for a reason other than a deadlock, which reruns the whole transaction)
each page runs again in a savepoint of its own; a page refused alone becomes Invalid
Input, its Error Log saying the entry could not be stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.config import Channels
from reelqueue.db.retry import is_retryable
from reelqueue.ingest.decisions import (
    DEFAULT_PRIORITY,
    Decision,
    Outcome,
    Rules,
    Wanted,
    late_edit_log,
    parse_priority,
)
from reelqueue.ingest.snapshot import PageSnapshot
from reelqueue.notion import PageWrites
from reelqueue.queue import (
    NewTask,
    TaskChange,
    TaskRecord,
    apply_changes,
    insert_tasks,
    load_tasks_by_page,
)
from reelqueue.statuses import StatusTable

__all__ = ["ReactionSummary", "Reactor", "late_edit_log", "parse_priority"]

log = structlog.get_logger(__name__)


@dataclass
class ReactionSummary:
    """What one batch of page reads did, counted by outcome."""

    outcomes: Counter[str] = field(default_factory=Counter)
    stale: set[str] = field(default_factory=set)
    """Pages left for a later read: a write of ours to them settled after this read began."""

    def count(self, outcome: Outcome, pages: int = 1) -> None:
        """Count pages under an outcome's name."""
        self.outcomes[outcome.value] += pages

    def add(self, other: ReactionSummary) -> None:
        """Fold another batch's counts into this one."""
        self.outcomes.update(other.outcomes)
        self.stale |= other.stale

    def __getitem__(self, outcome: str) -> int:
        return self.outcomes[outcome]


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
        self._rules = Rules(table, channels, foreign_channels)
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
        if page.in_trash or self._rules.wanted(page.status_label) is not Wanted.QUEUED:
            summary.count(Outcome.REFUSED)
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
                        self._table,
                    )
        except DBAPIError as again:
            if is_retryable(again):
                raise
            summary.count(Outcome.REFUSED)
            return summary
        summary.count(Outcome.INVALID)
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
            summary.count(Outcome.STALE, len(summary.stale))
            batch = [p for p in batch if p.page_id not in summary.stale]
        new: list[NewTask] = []
        changes: list[TaskChange] = []
        for page in batch:
            task = tasks.get(page.page_id)
            decision = self._rules.decide(page, task)
            summary.count(decision.outcome)
            if task is None:
                self._log_new(page, decision)
                if decision.target is not None:
                    new.append(_new_task(page, decision.target, decision.values))
            else:
                self._log_change(page, task, decision)
                if decision.changes_task:
                    changes.append(_change(page, task, decision))
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
        summary.count(Outcome.RACED, len(new) - len(created))
        await apply_changes(conn, changes, self._table)
        return summary

    @staticmethod
    def _log_new(page: PageSnapshot, decision: Decision) -> None:
        if decision.outcome is Outcome.INVALID:
            log.info("entry is invalid", notion_page_id=page.page_id, reason=decision.reason)

    @staticmethod
    def _log_change(page: PageSnapshot, task: TaskRecord, decision: Decision) -> None:
        if "priority" in decision.values:
            log.info(
                "task reprioritised",
                notion_page_id=page.page_id,
                task_id=task.id,
                priority=page.priority_label,
            )
        if decision.outcome in (Outcome.UNCHANGED, Outcome.REPRIORITISED):
            return
        if decision.outcome is Outcome.INVALID:
            log.info("entry is invalid", notion_page_id=page.page_id, reason=decision.reason)
        if decision.target is None:
            log.info(
                "edit ignored",
                notion_page_id=page.page_id,
                task_id=task.id,
                label=page.status_label,
                status=task.status,
                reason=decision.reason,
            )
        else:
            log.info(
                f"task {decision.outcome.value}",
                notion_page_id=page.page_id,
                task_id=task.id,
                from_status=task.status,
                to_status=decision.target,
            )


def _new_task(page: PageSnapshot, status: str, values: Mapping[str, Any]) -> NewTask:
    """The task a page without one gets, with the columns its decision set."""
    return NewTask(
        notion_page_id=page.page_id,
        data_source_id=page.data_source_id or "",
        channel=values["channel"],
        title=values["title"],
        topic=values["topic"],
        story_direction=values["story_direction"],
        priority=values["priority"],
        status=status,
        notion_seen=values["notion_seen"],
        error_log=values["error_log"],
    )


def _change(page: PageSnapshot, task: TaskRecord, decision: Decision) -> TaskChange:
    """A decision about an existing task, as the change that stores it."""
    return TaskChange(
        task_id=task.id,
        notion_page_id=task.notion_page_id,
        from_status=task.status,
        to_status=decision.target or task.status,
        actor=_actor(page),
        reason=decision.reason,
        values=decision.values,
        push=decision.push,
    )
