"""Step sets: the built-in demo, entry points, configured `module:attribute`, clear errors."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

from reelqueue.pipeline import DEMO_STEPS, StepSetError, load_step_sets
from reelqueue.statuses import STEPS


@pytest.fixture
def module() -> Iterator[types.ModuleType]:
    fake = types.ModuleType("studio_steps_for_tests")
    fake.FULL = dict(DEMO_STEPS)  # type: ignore[attr-defined]
    fake.PARTIAL = {"assets": DEMO_STEPS["assets"]}  # type: ignore[attr-defined]
    fake.make = lambda: dict(DEMO_STEPS)  # type: ignore[attr-defined]
    sys.modules[fake.__name__] = fake
    yield fake
    del sys.modules[fake.__name__]


def test_demo_is_always_there_with_every_step() -> None:
    sets = load_step_sets({})
    assert set(sets["demo"]) >= set(STEPS)


def test_a_configured_set_is_loaded_from_module_attribute(module: types.ModuleType) -> None:
    sets = load_step_sets(
        {"studio": f"{module.__name__}:FULL", "factory": f"{module.__name__}:make"}
    )
    assert sets["studio"]["video"] is DEMO_STEPS["video"]
    assert set(sets["factory"]) == set(STEPS)


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("studio_steps_for_tests:PARTIAL", "lacks the steps composites"),
        ("studio_steps_for_tests:MISSING", "has no attribute 'MISSING'"),
        ("no_such_module_anywhere:STEPS", "cannot import 'no_such_module_anywhere'"),
        ("just-a-name", "is not 'module:attribute'"),
    ],
)
def test_a_bad_step_set_is_a_clear_error(
    module: types.ModuleType, reference: str, message: str
) -> None:
    with pytest.raises(StepSetError, match=message):
        load_step_sets({"studio": reference})
