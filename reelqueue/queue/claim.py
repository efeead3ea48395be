"""Claiming work from the tasks table, and holding it with a lease.

A claim takes runnable tasks (`SELECT ... FOR UPDATE SKIP LOCKED` over the partial
index of runnable rows, per channel), in order: priority, then a fair turn across
channels, then first in, first out; never past a channel's `max_concurrent` or a
step's cap, counted over the whole fleet. Claims hold a transaction-level advisory
lock so those counts hold: shared while no cap can bind (every cap has room for what
runs plus every worker's slots), and alone, in turns, otherwise. A worker records the
tasks it has finished and claims their successors in the same statement: one round
trip and one commit per turn.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.queue.tasks import TaskRecord
from reelqueue.statuses import StatusTable

__all__ = [
    "CLAIM_LOCK_KEY",
    "ClaimLimits",
    "ClaimedTask",
    "Exchanged",
    "ExpiredLease",
    "Finish",
    "exchange",
    "expired_leases",
    "heartbeat",
]

CLAIM_LOCK_KEY = 0x7265_656C_6300


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


@dataclass(frozen=True)
class Finish:
    """The end of one held task: move it along `path` ((status, reason), ...) with `values`."""

    task: TaskRecord
    expected_status: str
    path: Sequence[tuple[str, str]]
    values: Mapping[str, Any]


_FINISH_COLUMNS = frozenset(
    {"outputs", "step_attempts", "attempts", "resume_step", "error_log", "youtube_url", "run_after"}
)


def _finished(items: Sequence[Finish]) -> str:
    """The finishes as the one JSON array `reelqueue_exchange` takes: for each task, its
    expected and final status, the columns to set, and one history row per hop."""
    finished = []
    for item in items:
        unknown = set(item.values) - _FINISH_COLUMNS
        if unknown:
            raise ValueError(f"finish cannot set {sorted(unknown)}")
        before = [item.expected_status] + [status for status, _ in item.path[:-1]]
        finished.append(
            {
                "id": item.task.id,
                "expected": item.expected_status,
                "final": item.path[-1][0],
                "columns": {
                    k: v.isoformat() if isinstance(v, datetime) else v
                    for k, v in item.values.items()
                },
                "hops": [
                    {"from_status": old, "to_status": new, "reason": reason}
                    for old, (new, reason) in zip(before, item.path, strict=True)
                ],
            }
        )
    return json.dumps(finished)


_EXCHANGE = (
    "SELECT moved, claimed, steps, tight FROM reelqueue_exchange("
    + ", ".join(f"${n}" for n in range(1, 12))
    + ")"
)
_JSON_COLUMNS = ("notion_seen", "outputs")


@dataclass(frozen=True)
class Exchanged:
    """What one exchange did: which finishes were recorded, what was claimed, and
    whether a cap could bind (then the next claim should take the lock alone)."""

    recorded: list[bool]
    claimed: list[ClaimedTask]
    tight: bool = False


async def exchange(
    conn: asyncpg.Connection,
    *,
    worker_id: str,
    finished: Sequence[Finish] = (),
    claim: int = 0,
    lease: timedelta,
    limits: ClaimLimits,
    slots: int | None = None,
    shared: bool = False,
) -> Exchanged:
    """Record this worker's finished tasks and claim up to `claim` more, in one round trip.

    The `reelqueue_exchange` function (reelqueue/db/sql/queue.sql) takes the fleet-wide claim lock
    (`shared`, or alone), counts what runs per channel and step, ends the worker's hold
    on `finished` (each moves only if the worker still holds it in its expected status;
    False for one means its lease was lost and nothing of it was written), picks in
    order within the caps (`FOR UPDATE SKIP LOCKED` over the runnable index), and starts
    the picked tasks' steps under this worker's lease. History and outbox rows and
    NOTIFY come with both. `slots` is the most this worker ever holds (default `claim`):
    the connection is tagged with it, for the fleet's sum that tells whether claims may
    share the lock. A shared claim that finds a cap could bind claims nothing and
    returns `tight`; so does any claim, to say the next one should not share. One
    statement, so atomic outside a transaction. Being the workers' hot path, it runs on
    the driver's own connection (prepared there once).
    """
    if not finished and claim <= 0:
        return Exchanged([], [])
    channels = sorted(limits.channel_caps)
    steps = sorted(limits.step_caps)
    row = await conn.fetchrow(
        _EXCHANGE,
        worker_id,
        _finished(finished),
        claim if channels else 0,
        lease,
        channels,
        [limits.channel_caps[c] for c in channels],
        steps,
        [limits.step_caps[s] for s in steps],
        CLAIM_LOCK_KEY,
        max(slots if slots is not None else claim, 0),
        shared,
    )
    moved = set(row["moved"])
    claimed = [
        ClaimedTask(TaskRecord.from_mapping(_decoded(record)), step)
        for record, step in zip(row["claimed"], row["steps"], strict=True)
    ]
    return Exchanged([item.task.id in moved for item in finished], claimed, bool(row["tight"]))


def _decoded(record: Mapping[str, Any]) -> dict[str, Any]:
    """A claimed row as a mapping, JSON columns parsed (the driver may hand them as text)."""
    row = dict(record.items())
    for column in _JSON_COLUMNS:
        if isinstance(row[column], str):
            row[column] = json.loads(row[column])
    return row


async def heartbeat(
    conn: AsyncConnection,
    *,
    worker_id: str,
    task_ids: Sequence[int],
    lease: timedelta,
    table: StatusTable,
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
                "running": sorted(table.running),
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


async def expired_leases(conn: AsyncConnection, table: StatusTable) -> list[ExpiredLease]:
    """Running tasks whose lease ran out, locked until the caller's transaction ends."""
    rows = await conn.execute(
        text(
            "SELECT id, notion_page_id, status, locked_by, step_attempts, attempts"
            " FROM tasks WHERE locked_by IS NOT NULL AND lease_expires_at < now()"
            " AND status = ANY(CAST(:running AS text[]))"
            " FOR UPDATE SKIP LOCKED"
        ),
        {"running": sorted(table.running)},
    )
    expired = []
    for row in rows.mappings():
        step = table[row["status"]].step
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
