"""The step API: what a pipeline step receives, what it returns, and how it fails."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reelqueue.config import Channel, Settings
from reelqueue.errors import ReelqueueError

__all__ = [
    "LeaseLost",
    "PermanentStepError",
    "StepContext",
    "StepError",
    "StepFunction",
    "StepResult",
    "StepSet",
    "TaskInfo",
    "TransientStepError",
]


class StepError(ReelqueueError):
    """A step could not do its work."""


class TransientStepError(StepError):
    """A failure worth retrying (a timeout, a busy service): the step runs again later."""


class PermanentStepError(StepError):
    """A failure retrying will not fix: the task goes to the step's error status."""


class LeaseLost(ReelqueueError):
    """This worker no longer holds the task (reaped, cancelled or re-queued meanwhile)."""


@dataclass(frozen=True)
class TaskInfo:
    """The task a step works on, as the creator described it in Notion."""

    id: int
    notion_page_id: str
    title: str
    topic: str
    story_direction: str
    channel: str
    priority: int
    attempts: int


@dataclass(frozen=True)
class StepResult:
    """What a step made: artifact files, and for upload the published URL."""

    files: tuple[str, ...] = ()
    url: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The result as stored in the task's outputs."""
        return {"files": list(self.files), "url": self.url, **dict(self.details)}


@dataclass(frozen=True)
class StepContext:
    """Everything a step gets: the task, its channel, a folder of its own, and a heartbeat.

    `outputs` holds earlier steps' results by step name. A long step should await
    `heartbeat()` now and then: it extends the task's lease (once the lease is a third
    spent) and raises `LeaseLost` when the task was taken away.
    """

    task: TaskInfo
    step: str
    channel: Channel
    settings: Settings
    artifacts_dir: Path
    outputs: Mapping[str, Any]
    log: Any
    heartbeat: Callable[[], Awaitable[None]]


StepFunction = Callable[[StepContext], Awaitable[StepResult]]
StepSet = Mapping[str, StepFunction]
