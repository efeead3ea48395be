"""Where a task goes after a step: on (through auto-approved gates), back to wait, or to error."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from reelqueue.config import Channel
from reelqueue.statuses import Kind, StatusTable

__all__ = ["Outcome", "failure_outcome", "retry_delay", "success_path"]


@dataclass(frozen=True)
class Outcome:
    """The statuses a task moves through, with why, and the columns that change."""

    path: list[tuple[str, str]]
    values: dict[str, Any]


def success_path(
    table: StatusTable, running_status: str, channel: Channel
) -> list[tuple[str, str]]:
    """After a step succeeds: its result status, then on through step-less statuses and
    the gates this channel auto-approves, stopping where work or a person is needed."""
    row = table[running_status]
    assert row.next is not None
    status = row.next
    path = [(status, f"{row.step} done")]
    while True:
        info = table[status]
        if info.kind is Kind.GATE and info.gate in channel.auto_approve and info.approval:
            status = info.approval
            path.append((status, f"{info.gate} review auto-approved for channel {channel.id}"))
        elif info.kind is Kind.WAITING and info.step is None and info.next:
            status = info.next
            path.append((status, "ready for review"))
        else:
            return path


def retry_delay(step_attempts: int, base_s: float, cap_s: float = 300.0) -> timedelta:
    """Capped exponential backoff with full jitter before a step's next try."""
    ceiling = min(cap_s, base_s * 2 ** max(step_attempts - 1, 0))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def failure_outcome(
    table: StatusTable,
    *,
    step: str,
    running_status: str,
    attempts: int,
    step_attempts: int,
    max_attempts: int,
    transient: bool,
    message: str,
    retry_base_s: float,
    backoff: bool = True,
    now: datetime | None = None,
) -> Outcome:
    """A failed try: wait and retry (transient, tries left), or the step's error status.

    `step_attempts` counts this try; the Error Log line gives time, step, message and
    the attempt count. Without `backoff` (a crashed worker, not a failing step) the
    retry may start at once.
    """
    moment = now or datetime.now(UTC)
    values: dict[str, Any] = {"attempts": attempts + 1, "step_attempts": step_attempts}
    if transient and step_attempts < max_attempts:
        target = table.waiting_status_for(step)
        values["run_after"] = moment + (
            retry_delay(step_attempts, retry_base_s) if backoff else timedelta(0)
        )
        values["resume_step"] = step if target == "queued" else None
        reason = f"{step} failed (attempt {step_attempts} of {max_attempts}), retrying: {message}"
        return Outcome([(target, reason)], values)
    error = table[running_status].error
    assert error is not None
    kind = "failed" if not transient else f"failed {step_attempts} times"
    values["attempts"] = attempts
    values["resume_step"] = step
    values["error_log"] = (
        f"{moment:%Y-%m-%d %H:%M:%S} UTC · {step} {kind} "
        f"(attempt {step_attempts} of {max_attempts}): {message}"
    )
    return Outcome([(error, f"{step} {kind}: {message}")], values)
