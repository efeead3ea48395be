"""Running one claimed step: give it its context, and turn how it ends into the task's move.

A step that returns moves the task along its success path; one that fails is retried
or stopped at its error status (`failure_outcome`); one whose lease was lost is left
alone (another worker or the reaper has it); one cancelled by a stop is given back
untouched, claimable again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from reelqueue.config import Channels, Settings
from reelqueue.pipeline.steps import (
    LeaseLost,
    PermanentStepError,
    StepContext,
    StepSet,
    TaskInfo,
    TransientStepError,
)
from reelqueue.pipeline.transitions import failure_outcome, success_path
from reelqueue.queue import ClaimedTask, Finish, TaskRecord
from reelqueue.statuses import StatusTable

__all__ = ["RETRYABLE", "StepRunner"]

log = structlog.get_logger(__name__)

RETRYABLE: tuple[type[BaseException], ...] = (TransientStepError, TimeoutError, ConnectionError)


class StepRunner:
    """Runs claimed steps for `worker_id`; their ends go to `finish`."""

    def __init__(
        self,
        settings: Settings,
        channels: Channels,
        step_sets: Mapping[str, StepSet],
        *,
        worker_id: str,
        finish: Callable[[Finish], Awaitable[bool]],
        extend_lease: Callable[[int], Awaitable[None]],
        is_lost: Callable[[int], bool],
        on_done: Callable[[], None],
        table: StatusTable,
    ) -> None:
        self._settings = settings
        self._channels = channels
        self._step_sets = step_sets
        self._worker_id = worker_id
        self._finish_one = finish
        self._extend_lease = extend_lease
        self._is_lost = is_lost
        self._on_done = on_done
        self._table = table

    async def execute(self, claimed: ClaimedTask) -> None:
        """Run the claimed step to its end, and record that end."""
        task, step = claimed.task, claimed.step
        bound = log.bind(notion_page_id=task.notion_page_id, task_id=task.id, step=step)
        if step is None:
            return
        channel = self._channels.get(task.channel)
        step_set = self._step_sets.get(channel.step_set if channel else "demo")
        if channel is None or step_set is None:
            await self._fail(claimed, task.status, f"no channel or step set for {task.channel!r}",
                             transient=False)  # fmt: skip
            return
        status = task.status
        try:
            context = StepContext(
                task=TaskInfo(
                    id=task.id, notion_page_id=task.notion_page_id, title=task.title,
                    topic=task.topic, story_direction=task.story_direction,
                    channel=task.channel, priority=task.priority, attempts=task.attempts,
                ),
                step=step,
                channel=channel,
                settings=self._settings,
                artifacts_dir=self._settings.artifacts_path / str(task.id),
                outputs=dict(task.outputs),
                log=bound,
                heartbeat=lambda: self._extend_lease(task.id),
            )  # fmt: skip
            result = await step_set[step](context)
        except LeaseLost:
            bound.warning("step abandoned: the task was taken away")
            return
        except asyncio.CancelledError:
            if not self._is_lost(task.id):
                await asyncio.shield(self._release(task, status, step))
            raise
        except RETRYABLE as exc:
            await self._fail(claimed, status, str(exc) or type(exc).__name__, transient=True)
            return
        except PermanentStepError as exc:
            await self._fail(claimed, status, str(exc), transient=False)
            return
        except Exception as exc:  # a step's own bug: report it on the page, do not retry
            bound.exception("step crashed")
            await self._fail(claimed, status, f"{type(exc).__name__}: {exc}", transient=False)
            return
        values: dict[str, Any] = {
            "outputs": {**task.outputs, step: result.as_json()},
            "step_attempts": 0,
            "resume_step": None,
            "error_log": "",
        }
        if result.url:
            values["youtube_url"] = result.url
        path = success_path(self._table, status, channel)
        await self._finish(task, status, path, values)
        self._on_done()
        bound.info("step done", to_status=path[-1][0])

    async def _finish(
        self, task: TaskRecord, status: str, path: list[tuple[str, str]], values: dict[str, Any]
    ) -> bool:
        recorded = await self._finish_one(Finish(task, status, path, values))
        if not recorded:
            log.warning("result discarded: the lease was lost", task_id=task.id)
        return recorded

    async def _fail(
        self, claimed: ClaimedTask, status: str, message: str, *, transient: bool
    ) -> None:
        task, step = claimed.task, claimed.step
        assert step is not None
        outcome = failure_outcome(
            self._table, step=step, running_status=status, attempts=task.attempts,
            step_attempts=task.step_attempts + 1,
            max_attempts=self._settings.max_attempts, transient=transient, message=message,
            retry_base_s=self._settings.retry_base_s,
        )  # fmt: skip
        log.warning(
            "step failed",
            notion_page_id=task.notion_page_id,
            task_id=task.id,
            step=step,
            to_status=outcome.path[-1][0],
            error=message,
        )
        await self._finish(task, status, outcome.path, outcome.values)

    async def _release(self, task: TaskRecord, status: str, step: str) -> None:
        """Give a task back untouched (drain timeout): claimable again at once."""
        target = self._table.waiting_status_for(step)
        values = {"resume_step": step if target == "queued" else None}
        path = [(target, f"released by {self._worker_id} on shutdown")]
        with contextlib.suppress(Exception):
            await self._finish(task, status, path, values)
