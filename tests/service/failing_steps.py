"""A step set for tests: the demo steps, but audio fails for good the first time per task."""

from __future__ import annotations

from collections import Counter

from reelqueue.pipeline import DEMO_STEPS, PermanentStepError, StepContext, StepResult

CALLS: Counter[tuple[int, str]] = Counter()


def _counted(step: str):  # type: ignore[no-untyped-def]
    async def run(ctx: StepContext) -> StepResult:
        CALLS[(ctx.task.id, step)] += 1
        if step == "audio" and CALLS[(ctx.task.id, step)] == 1:
            raise PermanentStepError("the voice model rejected the script")
        return await DEMO_STEPS[step](ctx)

    return run


STEPS = {step: _counted(step) for step in DEMO_STEPS}
