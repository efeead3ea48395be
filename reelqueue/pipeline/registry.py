"""Finding step sets: the built-in `demo`, the `reelqueue.steps` entry points, and config."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any

from reelqueue.errors import UserError
from reelqueue.pipeline.demo_steps import demo_steps
from reelqueue.pipeline.steps import StepSet
from reelqueue.statuses import STEPS

__all__ = ["ENTRY_POINT_GROUP", "StepSetError", "check_step_caps", "load_step_sets"]

ENTRY_POINT_GROUP = "reelqueue.steps"


class StepSetError(UserError):
    """A configured step set cannot be loaded or lacks steps."""


def _import(reference: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise StepSetError(f"REELQUEUE_STEP_SETS: {reference!r} is not 'module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StepSetError(f"REELQUEUE_STEP_SETS: cannot import {module_name!r} ({exc})") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise StepSetError(
            f"REELQUEUE_STEP_SETS: {module_name!r} has no attribute {attribute!r}"
        ) from None


def _checked(name: str, found: Any, steps_needed: Sequence[str]) -> StepSet:
    steps = found() if callable(found) and not isinstance(found, Mapping) else found
    if not isinstance(steps, Mapping):
        raise StepSetError(f"step set {name!r} is not a mapping of step name to function")
    missing = [step for step in steps_needed if not callable(steps.get(step))]
    if missing:
        raise StepSetError(f"step set {name!r} lacks the steps {', '.join(missing)}")
    return steps


def load_step_sets(
    configured: Mapping[str, str], steps: Sequence[str] = STEPS
) -> dict[str, StepSet]:
    """Every step set by name: `demo`, entry points, then REELQUEUE_STEP_SETS (which wins);
    each must have a function for every one of `steps` (the vocabulary's)."""
    sets: dict[str, StepSet] = {"demo": demo_steps(steps)}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == "demo":
            continue
        try:
            sets[entry.name] = _checked(entry.name, entry.load(), steps)
        except ImportError as exc:
            raise StepSetError(
                f"step set {entry.name!r} ({entry.value}) fails to load: {exc}"
            ) from None
    for name, reference in configured.items():
        sets[name] = _checked(name, _import(reference), steps)
    return sets


def check_step_caps(caps: Mapping[str, int], steps: Sequence[str] = STEPS) -> None:
    """Refuse a REELQUEUE_STEP_CAPS naming an unknown step or capping one below zero."""
    for step, cap in caps.items():
        if step not in steps:
            raise StepSetError(
                f"REELQUEUE_STEP_CAPS: unknown step {step!r}; known steps: {', '.join(steps)}"
            )
        if cap < 0:
            raise StepSetError(
                f"REELQUEUE_STEP_CAPS: {step!r} is capped at {cap}; a cap is 0 or more "
                '(steps of it at once across the fleet), e.g. {"video": 5}'
            )
