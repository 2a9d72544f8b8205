"""The lifecycle package is pure: standard library and itself; no clock (the time comes in
as an argument)."""

from __future__ import annotations

import pkgutil
import sys

import pytest

import lockgate.lifecycle
from tests.engine.test_purity import FORBIDDEN_MODULES, _clock_calls, _imports, _tree

MODULES = sorted(
    [lockgate.lifecycle.__name__]
    + [m.name for m in pkgutil.walk_packages(lockgate.lifecycle.__path__, "lockgate.lifecycle.")]
)


def test_the_modules_are_found() -> None:
    assert {
        "lockgate.lifecycle.rules",
        "lockgate.lifecycle.serving",
        "lockgate.lifecycle.stages",
        "lockgate.lifecycle.stale",
    } <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_imports_only_stdlib_and_itself(name: str) -> None:
    bad = []
    for imported in _imports(_tree(name)):
        if imported.split(".")[:2] == ["lockgate", "lifecycle"]:
            continue
        top = imported.split(".")[0]
        if top not in sys.stdlib_module_names or top in FORBIDDEN_MODULES:
            bad.append(imported)
    assert bad == []


@pytest.mark.parametrize("name", MODULES)
def test_no_clock_calls(name: str) -> None:
    assert _clock_calls(_tree(name)) == []
