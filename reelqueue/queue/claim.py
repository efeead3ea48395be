"""Claiming work from the tasks table, and holding it with a lease.

A claim takes runnable tasks (`SELECT ... FOR UPDATE SKIP LOCKED` over the partial
index of runnable rows, per channel), in order: priority, then a fair turn across
channels, then first in, first out; never past a channel's `max_concurrent` or a
step's cap, counted over the whole fleet. Claims are serialised by a transaction-level
advisory lock so those counts hold; the claim itself is one short transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.db.models import RUNNABLE_STATUSES
from reelqueue.queue.tasks import (
    OUTBOX_CHANNEL,
    TASKS_CHANNEL,
    TaskRecord,
)
from reelqueue.statuses import Kind, StatusTable

__all__ = [
    "CLAIM_LOCK_KEY",
    "ClaimLimits",
    "ClaimedTask",
    "ExpiredLease",
    "Finish",
    "claim_tasks",
    "expired_leases",
    "finish_many",
    "heartbeat",
    "running_status_for",
    "waiting_status_for",
]

CLAIM_LOCK_KEY = 0x7265_656C_6300
_TABLE = StatusTable()
_TABLE_STEPS = sorted({row.step for row in _TABLE if row.step is not None})
_RUNNING = tuple(_TABLE.statuses_of(Kind.RUNNING))


@dataclass(frozen=True)
class ClaimLimits:
    """Fleet-wide limits: running tasks per channel, and per step (absent: no limit)."""

    channel_caps: Mapping[str, int]
    step_caps: Mapping[str, int]


@dataclass(frozen=True)
class ClaimedTask:
    """A task this worker now holds, and the step it is to run."""

    task: TaskRecord
    step: str | None


def waiting_status_for(step: str) -> str:
    """The runnable status that starts a step (where a retried step waits)."""
    return next(r.status for r in _TABLE if r.kind is Kind.WAITING and r.step == step)


def running_status_for(step: str) -> str:
    """The status a task shows while the step runs."""
    return next(
        r.status
        for r in _TABLE
        if r.kind is Kind.RUNNING and r.step == step and r.status != "claimed"
    )


_CLAIM = text(
    "SELECT * FROM reelqueue_claim(:worker, :limit, :lease, :channels, :channel_caps,"
    " :step_names, :step_caps, :status_of, :step_of, :running_step, :running_status,"
    " :runnable, :lock_key)"
)
_STEP_OF = {row.status: row.step for row in _TABLE if row.step is not None}
_RUNNING_FOR = {step: running_status_for(step) for step in _TABLE_STEPS}


async def claim_tasks(
    conn: AsyncConnection,
    *,
    worker_id: str,
    limit: int,
    lease: timedelta,
    limits: ClaimLimits,
) -> list[ClaimedTask]:
    """Claim up to `limit` runnable tasks for `worker_id` in one round trip.

    The `reelqueue_claim` function (migration 0003) takes the advisory lock, counts
    what runs per channel and step, picks in order within the caps, locks the rows
    (SKIP LOCKED), writes their history and outbox rows, and takes their leases.
    """
    if limit <= 0 or not limits.channel_caps:
        return []
    channels = sorted(limits.channel_caps)
    steps = sorted(limits.step_caps)
    rows = await conn.execute(
        _CLAIM,
        {
            "worker": worker_id,
            "limit": limit,
            "lease": lease,
            "channels": channels,
            "channel_caps": [limits.channel_caps[c] for c in channels],
            "step_names": steps,
            "step_caps": [limits.step_caps[s] for s in steps],
            "status_of": list(_STEP_OF),
            "step_of": list(_STEP_OF.values()),
            "running_step": list(_RUNNING_FOR),
            "running_status": list(_RUNNING_FOR.values()),
            "runnable": list(RUNNABLE_STATUSES),
            "lock_key": CLAIM_LOCK_KEY,
        },
    )
    claimed = []
    for row in rows.mappings():
        task = TaskRecord.from_mapping(dict(row))
        claimed.append(ClaimedTask(task, _STEP_OF.get(task.status)))
    return claimed


async def heartbeat(
    conn: AsyncConnection, *, worker_id: str, task_ids: Sequence[int], lease: timedelta
) -> set[int]:
    """Extend the leases this worker still holds; return the ids it no longer holds."""
    if not task_ids:
        return set()
    held = (
        await conn.scalars(
            text(
                "UPDATE tasks SET heartbeat_at = now(),"
                " lease_expires_at = now() + CAST(:lease AS interval)"
                " WHERE id = ANY(CAST(:ids AS bigint[])) AND locked_by = :worker"
                " AND status = ANY(CAST(:running AS text[])) RETURNING id"
            ),
            {
                "ids": list(task_ids),
                "worker": worker_id,
                "lease": lease,
                "running": list(_RUNNING),
            },
        )
    ).all()
    return set(task_ids) - set(held)


@dataclass(frozen=True)
class ExpiredLease:
    """A running task whose worker stopped heartbeating."""

    task_id: int
    notion_page_id: str
    status: str
    step: str
    locked_by: str
    attempts: int
    step_attempts: int


async def expired_leases(conn: AsyncConnection) -> list[ExpiredLease]:
    """Running tasks whose lease ran out, locked until the caller's transaction ends."""
    rows = await conn.execute(
        text(
            "SELECT id, notion_page_id, status, locked_by, step_attempts, attempts"
            " FROM tasks WHERE locked_by IS NOT NULL AND lease_expires_at < now()"
            " AND status = ANY(CAST(:running AS text[]))"
            " FOR UPDATE SKIP LOCKED"
        ),
        {"running": list(_RUNNING)},
    )
    expired = []
    for row in rows.mappings():
        step = _TABLE[row["status"]].step
        assert step is not None
        expired.append(
            ExpiredLease(
                task_id=row["id"],
                notion_page_id=row["notion_page_id"],
                status=row["status"],
                step=step,
                locked_by=row["locked_by"],
                attempts=row["attempts"],
                step_attempts=row["step_attempts"],
            )
        )
    return expired


@dataclass(frozen=True)
class Finish:
    """The end of one held task: move it along `path` ((status, reason), ...) with `values`."""

    task: TaskRecord
    expected_status: str
    path: Sequence[tuple[str, str]]
    values: Mapping[str, Any]


_FINISH_COLUMNS: dict[str, str] = {
    "outputs": "jsonb",
    "step_attempts": "int",
    "attempts": "int",
    "resume_step": "text",
    "error_log": "text",
    "youtube_url": "text",
    "run_after": "timestamptz",
}
_FINISH = text(
    """
    WITH moved AS (
        UPDATE tasks t SET
            status = u.final,
            locked_by = NULL,
            heartbeat_at = NULL,
            lease_expires_at = NULL,
            updated_at = now(),
            version = t.version + 1,
    """
    + ",\n".join(
        f"            {column} = CASE WHEN u.vals ? '{column}'"
        f" THEN CAST(u.vals ->> '{column}' AS {kind}) ELSE t.{column} END"
        if kind != "jsonb"
        else f"            {column} = CASE WHEN u.vals ? '{column}' THEN u.vals -> '{column}'"
        f" ELSE t.{column} END"
        for column, kind in _FINISH_COLUMNS.items()
    )
    + """
        FROM unnest(CAST(:ids AS bigint[]), CAST(:expected AS text[]), CAST(:finals AS text[]),
                    CAST(:vals AS jsonb[])) AS u(id, expected, final, vals)
        WHERE t.id = u.id AND t.locked_by = :worker AND t.status = u.expected
        RETURNING t.id, t.notion_page_id, t.status
    ), events AS (
        INSERT INTO task_events (task_id, from_status, to_status, actor, reason)
        SELECT e.task, e.from_status, e.to_status, :actor, e.reason
        FROM unnest(CAST(:event_tasks AS bigint[]), CAST(:event_from AS text[]),
                    CAST(:event_to AS text[]), CAST(:event_reasons AS text[]))
             AS e(task, from_status, to_status, reason)
        JOIN moved m ON m.id = e.task
    ), pushes AS (
        INSERT INTO outbox (task_id, notion_page_id, properties)
        SELECT m.id, m.notion_page_id, jsonb_build_object('status', m.status) FROM moved m
    ), woken AS (
        SELECT pg_notify(channel, '') FROM unnest(CAST(:channels AS text[])) AS channel
        WHERE EXISTS (SELECT 1 FROM moved)
    )
    SELECT m.id FROM moved m CROSS JOIN (SELECT count(*) FROM woken) AS w
    """
)


def _encoded(values: Mapping[str, Any]) -> str:
    unknown = set(values) - set(_FINISH_COLUMNS)
    if unknown:
        raise ValueError(f"finish cannot set {sorted(unknown)}")
    return json.dumps(
        {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}
    )


async def finish_many(
    conn: AsyncConnection, items: Sequence[Finish], *, worker_id: str, actor: str
) -> list[bool]:
    """End this worker's hold on several tasks in one statement, history and outbox included.

    Each moves only if the worker still holds it in its expected status; False for
    one means its lease was lost (reaped, or the creator cancelled) and nothing of it
    was written. Being one statement, it is atomic even on an autocommit connection.
    """
    if not items:
        return []
    hops = [
        (item.task.id, before, status, reason)
        for item in items
        for before, (status, reason) in zip(
            [item.expected_status] + [status for status, _ in item.path[:-1]],
            item.path,
            strict=True,
        )
    ]
    channels = [OUTBOX_CHANNEL]
    if any(item.path[-1][0] in RUNNABLE_STATUSES for item in items):
        channels.append(TASKS_CHANNEL)
    moved = set(
        (
            await conn.scalars(
                _FINISH,
                {
                    "ids": [item.task.id for item in items],
                    "expected": [item.expected_status for item in items],
                    "finals": [item.path[-1][0] for item in items],
                    "vals": [_encoded(item.values) for item in items],
                    "worker": worker_id,
                    "actor": actor,
                    "event_tasks": [hop[0] for hop in hops],
                    "event_from": [hop[1] for hop in hops],
                    "event_to": [hop[2] for hop in hops],
                    "event_reasons": [hop[3] for hop in hops],
                    "channels": channels,
                },
            )
        ).all()
    )
    return [item.task.id in moved for item in items]
