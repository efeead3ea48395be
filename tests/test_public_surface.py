"""Each package's `__all__` is exactly its public surface: every name exists, none is missed."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import pytest

import reelqueue

PACKAGES = sorted(
    name
    for _, name, is_pkg in pkgutil.walk_packages(reelqueue.__path__, "reelqueue.")
    if is_pkg and ".migrations" not in name
)


def _public_names(module: types.ModuleType) -> set[str]:
    """Names a reader would take for the package's API: public, and not submodules."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name not in {"annotations"}
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_exactly_the_public_surface(package: str) -> None:
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{package} has no __all__"
    assert len(exported) == len(set(exported)), f"{package}.__all__ repeats a name"
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ names what it lacks: {missing}"
    assert set(exported) == _public_names(module), f"{package}.__all__ is not its public names"
