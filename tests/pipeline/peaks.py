"""The most tasks ever running at once, per channel and per step, from task_events.

Every claim and every end of a hold is a history row (a move into or out of a running
status), so the history shows every breach a sampler of the tasks table could miss.
A transaction's rows are applied together, grouped by `xmin` (readers only ever see
what committed; an exchange writes its finishes before its claims, but counted its
claims against the running tasks before those finishes). Transactions are ordered by
their first row's id, not `created_at`: that is when the statement began, before it
waited for the claim lock, while a claim draws its ids holding the lock until it
commits, so claims come in lock order. An exchange with finishes only takes no lock and
may commit after a claim numbered later: its tasks then leave the count a moment early,
which can hide only a breach made by a claim that counted those tasks as running.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.statuses import StatusTable


@dataclass(frozen=True)
class Move:
    """One history row: which transaction wrote it, its task's channel, and its move."""

    tx: str
    channel: str
    from_status: str | None
    to_status: str


async def history(engine: AsyncEngine) -> list[Move]:
    """Every task event, in the order its transaction first wrote (see the module doc)."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT e.xmin::text AS tx, t.channel, e.from_status, e.to_status"
                    " FROM task_events e JOIN tasks t ON t.id = e.task_id"
                    " ORDER BY min(e.id) OVER (PARTITION BY e.xmin::text), e.id"
                )
            )
        ).all()
    return [Move(*row) for row in rows]


def peaks(moves: Iterable[Move], key: Callable[[Move, str], str | None]) -> dict[str, int]:
    """The most tasks running at once per key; `key(move, status)` names a running
    status's key for that move (its channel, its step), None for one not counted."""
    running: Counter[str] = Counter()
    peak: dict[str, int] = defaultdict(int)
    tx: str | None = None
    for move in [*moves, None]:
        if move is None or move.tx != tx:
            for name, count in running.items():
                peak[name] = max(peak[name], count)
            if move is None:
                break
            tx = move.tx
        if move.from_status is not None and (before := key(move, move.from_status)):
            running[before] -= 1
        if after := key(move, move.to_status):
            running[after] += 1
    return dict(peak)


async def channel_peaks(engine: AsyncEngine, table: StatusTable) -> Mapping[str, int]:
    """The most tasks of each channel running at once, fleet-wide."""

    def channel(move: Move, status: str) -> str | None:
        return move.channel if status in table.running else None

    return peaks(await history(engine), channel)


async def step_peaks(engine: AsyncEngine, table: StatusTable) -> Mapping[str, int]:
    """The most tasks running each step at once, fleet-wide."""

    def step(_: Move, status: str) -> str | None:
        return table[status].step if status in table.running else None

    return peaks(await history(engine), step)
