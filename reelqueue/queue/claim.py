"""Claiming work from the tasks table, and holding it with a lease.

A claim takes runnable tasks (`SELECT ... FOR UPDATE SKIP LOCKED` over the partial
index of runnable rows, per channel), in order: priority, then a fair turn across
channels, then first in, first out; never past a channel's `max_concurrent` or a
step's cap, counted over the whole fleet. Claims are serialised by a transaction-level
advisory lock so those counts hold; the claim itself is one short transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.db.models import RUNNABLE_STATUSES
from reelqueue.queue.tasks import TaskChange, TaskRecord, apply_changes, record_changes
from reelqueue.statuses import Kind, StatusTable

__all__ = [
    "CLAIM_LOCK_KEY",
    "ClaimLimits",
    "ClaimedTask",
    "Finish",
    "claim_tasks",
    "finish_many",
    "heartbeat",
    "reap_expired",
    "running_status_for",
    "waiting_status_for",
]

CLAIM_LOCK_KEY = 0x7265_656C_6300
_TABLE = StatusTable()
_RUNNING = tuple(_TABLE.statuses_of(Kind.RUNNING))


@dataclass(frozen=True)
class ClaimLimits:
    """Fleet-wide limits: running tasks per channel, and per step (absent: no limit)."""

    channel_caps: Mapping[str, int]
    step_caps: Mapping[str, int]


@dataclass(frozen=True)
class ClaimedTask:
    """A task this worker now holds, and the step it is to run (None: only advance)."""

    task: TaskRecord
    step: str | None
    from_status: str


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


def _step_of(task: Mapping[str, Any]) -> str | None:
    status = str(task["status"])
    if status == "queued" and task["resume_step"]:
        return str(task["resume_step"])
    return _TABLE[status].step


_BUSY = text(
    "SELECT channel, status, count(*) AS n FROM tasks"
    " WHERE locked_by IS NOT NULL GROUP BY channel, status"
)
_CANDIDATES = text(
    """
    SELECT c.id, c.channel, c.status, c.priority, c.created_at, c.resume_step,
           (SELECT max(s.locked_at) FROM tasks s WHERE s.channel = ch.channel) AS last_served
    FROM unnest(CAST(:channels AS text[]), CAST(:fetch AS int[])) AS ch(channel, take)
    CROSS JOIN LATERAL (
        SELECT t.id, t.channel, t.status, t.priority, t.created_at, t.resume_step
        FROM tasks t
        WHERE t.channel = ch.channel
          AND t.status = ANY(CAST(:runnable AS text[]))
          AND t.run_after <= now()
          AND t.locked_by IS NULL
        ORDER BY t.priority, t.created_at, t.id
        LIMIT ch.take
        FOR UPDATE SKIP LOCKED
    ) c
    """
)
_TAKE = text(
    """
    UPDATE tasks t SET
        status = picked.to_status,
        locked_by = :worker,
        locked_at = now(),
        heartbeat_at = now(),
        lease_expires_at = now() + CAST(:lease AS interval),
        attempts = CASE WHEN t.attempts = 0 THEN 1 ELSE t.attempts END,
        updated_at = now(),
        version = t.version + 1
    FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[])) AS picked(id, to_status)
    WHERE t.id = picked.id
    RETURNING t.*
    """
)


def _pick(
    candidates: Sequence[dict[str, Any]],
    channel_slots: dict[str, int],
    step_slots: dict[str, int],
    limit: int,
    last_served: Mapping[str, float],
) -> list[dict[str, Any]]:
    """Choose in order: priority; each channel's n-th task before any channel's (n+1)-th,
    the channel served least recently first; then first in, first out."""
    rank: dict[str, int] = {}
    ranked = []
    for row in sorted(candidates, key=lambda r: (r["priority"], r["created_at"], r["id"])):
        channel = row["channel"]
        rank[channel] = rank.get(channel, 0) + 1
        key = (row["priority"], rank[channel], last_served.get(channel, 0.0), row["created_at"])
        ranked.append((key, row["id"], row))
    chosen: list[dict[str, Any]] = []
    for _key, _id, row in sorted(ranked, key=lambda r: (r[0], r[1])):
        if len(chosen) >= limit:
            break
        step = _step_of(row)
        if step is None or channel_slots.get(row["channel"], 0) <= 0:
            continue
        if step in step_slots and step_slots[step] <= 0:
            continue
        channel_slots[row["channel"]] -= 1
        if step in step_slots:
            step_slots[step] -= 1
        chosen.append(row)
    return chosen


async def claim_tasks(
    conn: AsyncConnection,
    *,
    worker_id: str,
    limit: int,
    lease: timedelta,
    limits: ClaimLimits,
) -> list[ClaimedTask]:
    """Claim up to `limit` runnable tasks for `worker_id`, in the caller's transaction."""
    if limit <= 0:
        return []
    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK_KEY})
    channel_busy: dict[str, int] = {}
    step_busy: dict[str, int] = {}
    for busy in (await conn.execute(_BUSY)).mappings():
        channel_busy[busy["channel"]] = channel_busy.get(busy["channel"], 0) + busy["n"]
        step = _TABLE[busy["status"]].step if busy["status"] in _TABLE else None
        if step is not None:
            step_busy[step] = step_busy.get(step, 0) + busy["n"]
    channel_slots = {
        c: cap - channel_busy.get(c, 0)
        for c, cap in limits.channel_caps.items()
        if cap - channel_busy.get(c, 0) > 0
    }
    if not channel_slots:
        return []
    step_slots = {s: cap - step_busy.get(s, 0) for s, cap in limits.step_caps.items()}
    channels = sorted(channel_slots)
    fetch = [min(channel_slots[c], limit) * 2 + 2 for c in channels]
    found = await conn.execute(
        _CANDIDATES,
        {"channels": channels, "fetch": fetch, "runnable": list(RUNNABLE_STATUSES)},
    )
    candidates = [dict(row) for row in found.mappings()]
    last_served = {
        row["channel"]: row["last_served"].timestamp()
        for row in candidates
        if row["last_served"] is not None
    }
    chosen = _pick(candidates, channel_slots, step_slots, limit, last_served)
    if not chosen:
        return []
    targets = {row["id"]: _first_running(row, _step_of(row)) for row in chosen}
    taken = await conn.execute(
        _TAKE,
        {
            "worker": worker_id,
            "lease": lease,
            "ids": list(targets),
            "statuses": list(targets.values()),
        },
    )
    by_id = {row["id"]: row for row in chosen}
    claimed = []
    for updated in taken.mappings():
        before = by_id[updated["id"]]
        claimed.append(
            ClaimedTask(
                TaskRecord.from_mapping(dict(updated)), _step_of(before), str(before["status"])
            )
        )
    await record_changes(
        conn,
        [
            TaskChange(
                task_id=c.task.id,
                notion_page_id=c.task.notion_page_id,
                from_status=c.from_status,
                to_status=c.task.status,
                actor=f"worker:{worker_id}",
                reason=f"claimed for {c.step}" if c.step else "advanced",
            )
            for c in claimed
        ],
    )
    return claimed


def _first_running(row: Mapping[str, Any], step: str | None) -> str:
    """Where a claim moves a task: Processing for a fresh one, else the step's status."""
    assert step is not None
    if row["status"] == "queued" and not row["resume_step"]:
        return "claimed"
    return running_status_for(step)


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


async def reap_expired(conn: AsyncConnection, *, max_attempts: int) -> list[int]:
    """Return tasks whose lease ran out to the queue (attempts + 1), or to their error."""
    rows = (
        (
            await conn.execute(
                text(
                    "SELECT id, notion_page_id, status, locked_by, step_attempts, attempts"
                    " FROM tasks WHERE locked_by IS NOT NULL AND lease_expires_at < now()"
                    " AND status = ANY(CAST(:running AS text[]))"
                    " FOR UPDATE SKIP LOCKED"
                ),
                {"running": list(_RUNNING)},
            )
        )
        .mappings()
        .all()
    )
    changes = []
    for row in rows:
        step = _TABLE[row["status"]].step
        assert step is not None
        tries = row["step_attempts"] + 1
        reason = f"lease expired: worker {row['locked_by']} stopped heartbeating during {step}"
        values: dict[str, Any] = {
            "locked_by": None,
            "lease_expires_at": None,
            "attempts": row["attempts"] + 1,
            "step_attempts": tries,
        }
        if tries >= max_attempts:
            target = _TABLE.error_for_step(step)
            values["resume_step"] = step
            values["error_log"] = f"{step}: {reason} (attempt {tries} of {max_attempts})"
        else:
            target = waiting_status_for(step)
            values["resume_step"] = step if target == "queued" else None
        changes.append(
            TaskChange(
                task_id=row["id"],
                notion_page_id=row["notion_page_id"],
                from_status=row["status"],
                to_status=target,
                actor="reaper",
                reason=reason,
                values=values,
            )
        )
    await apply_changes(conn, changes)
    return [c.task_id for c in changes]


@dataclass(frozen=True)
class Finish:
    """The end of one held task: move it along `path` ((status, reason), ...) with `values`."""

    task: TaskRecord
    expected_status: str
    path: Sequence[tuple[str, str]]
    values: Mapping[str, Any]


async def finish_many(
    conn: AsyncConnection, items: Sequence[Finish], *, worker_id: str, actor: str
) -> list[bool]:
    """End this worker's hold on several tasks in the caller's transaction.

    Each moves only if the worker still holds it in its expected status; False for
    one means its lease was lost (reaped, or the creator cancelled) and nothing of it
    was written. History and outbox rows of all of them go in one statement.
    """
    done: list[bool] = []
    changes: list[TaskChange] = []
    for item in items:
        final = item.path[-1][0]
        moved = await conn.scalar(
            text(
                "UPDATE tasks SET status = :status, locked_by = NULL,"
                " heartbeat_at = NULL, lease_expires_at = NULL, updated_at = now(),"
                " version = version + 1"
                + "".join(f", {column} = :{column}" for column in item.values)
                + " WHERE id = :id AND locked_by = :worker AND status = :expected RETURNING id"
            ).bindparams(*_json_params(item.values)),
            {"status": final, "id": item.task.id, "worker": worker_id,
             "expected": item.expected_status} | dict(item.values),
        )  # fmt: skip
        done.append(moved is not None)
        if moved is None:
            continue
        previous = item.expected_status
        for status, reason in item.path:
            changes.append(
                TaskChange(
                    task_id=item.task.id,
                    notion_page_id=item.task.notion_page_id,
                    from_status=previous,
                    to_status=status,
                    actor=actor,
                    reason=reason,
                    push=status == final,
                )
            )
            previous = status
    await record_changes(conn, changes)
    return done


def _json_params(values: Mapping[str, Any]) -> list[Any]:
    return [bindparam(k, type_=JSONB) for k, v in values.items() if isinstance(v, dict)]
