"""The production pipeline: the step API, step sets, transitions, and the worker."""

from reelqueue.pipeline.demo_steps import DEMO_STEPS, DEMO_URL_PREFIX, demo_steps
from reelqueue.pipeline.registry import ENTRY_POINT_GROUP, StepSetError, load_step_sets
from reelqueue.pipeline.steps import (
    LeaseLost,
    PermanentStepError,
    StepContext,
    StepError,
    StepFunction,
    StepResult,
    StepSet,
    TaskInfo,
    TransientStepError,
)
from reelqueue.pipeline.transitions import Outcome, failure_outcome, retry_delay, success_path
from reelqueue.pipeline.worker import RETRYABLE, Worker, new_worker_id

__all__ = [
    "DEMO_STEPS",
    "DEMO_URL_PREFIX",
    "ENTRY_POINT_GROUP",
    "RETRYABLE",
    "LeaseLost",
    "Outcome",
    "PermanentStepError",
    "StepContext",
    "StepError",
    "StepFunction",
    "StepResult",
    "StepSet",
    "StepSetError",
    "TaskInfo",
    "TransientStepError",
    "Worker",
    "demo_steps",
    "failure_outcome",
    "load_step_sets",
    "new_worker_id",
    "retry_delay",
    "success_path",
]
