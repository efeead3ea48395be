"""The `demo` step set: real local work, fast enough for a demo, with failures on demand.

Each step waits `REELQUEUE_DEMO_STEP_SECONDS` (heartbeating), fails transiently with
probability `REELQUEUE_DEMO_FAILURE_RATE`, and writes a small artifact file; upload
returns a URL on the reserved `.invalid` domain, so no one takes it for a real video.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterable

from reelqueue.pipeline.steps import StepContext, StepFunction, StepResult, TransientStepError
from reelqueue.statuses import STEPS

__all__ = ["DEMO_STEPS", "DEMO_URL_PREFIX", "demo_steps"]

DEMO_URL_PREFIX = "https://demo.reelqueue.invalid/watch/"


def _demo_step(step: str) -> StepFunction:
    async def run(ctx: StepContext) -> StepResult:
        remaining = ctx.settings.demo_step_seconds
        while remaining > 0:
            pause = min(remaining, 0.5)
            await asyncio.sleep(pause)
            remaining -= pause
            await ctx.heartbeat()
        if random.random() < ctx.settings.demo_failure_rate:
            raise TransientStepError(f"demo {step} failed on purpose (demo failure rate)")
        ctx.artifacts_dir.mkdir(parents=True, exist_ok=True)
        artifact = ctx.artifacts_dir / f"{step}.json"
        record = {
            "step": step,
            "title": ctx.task.title,
            "topic": ctx.task.topic,
            "inputs": sorted(ctx.outputs),
        }
        artifact.write_text(json.dumps(record))
        url = f"{DEMO_URL_PREFIX}{ctx.task.id}" if step == "upload" else None
        ctx.log.info("demo step done", step=step, artifact=str(artifact))
        return StepResult(files=(str(artifact),), url=url)

    run.__name__ = f"demo_{step}"
    return run


def demo_steps(steps: Iterable[str]) -> dict[str, StepFunction]:
    """A demo step for each of `steps` (a vocabulary with more steps gets a demo of each)."""
    return {step: _demo_step(step) for step in steps}


DEMO_STEPS: dict[str, StepFunction] = demo_steps(STEPS)
