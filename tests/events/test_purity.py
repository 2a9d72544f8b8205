"""The events package is pure: standard library, the policy's catalog and itself; no clock."""

from __future__ import annotations

import pkgutil
import sys

import pytest

import lockgate.events
from tests.engine.test_purity import FORBIDDEN_MODULES, _clock_calls, _imports, _tree

MODULES = sorted(
    [lockgate.events.__name__]
    + [m.name for m in pkgutil.walk_packages(lockgate.events.__path__, "lockgate.events.")]
)


def test_the_events_modules_are_found() -> None:
    assert {
        "lockgate.events.catalog",
        "lockgate.events.payloads",
        "lockgate.events.signing",
        "lockgate.events.targets",
    } <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_imports_only_stdlib_the_policy_and_the_events(name: str) -> None:
    bad = []
    for imported in _imports(_tree(name)):
        if imported.split(".")[:2] in (["lockgate", "policy"], ["lockgate", "events"]):
            continue
        if imported == "urllib.parse":  # parsing only (the rest of urllib does I/O)
            continue
        top = imported.split(".")[0]
        if top not in sys.stdlib_module_names or top in FORBIDDEN_MODULES:
            bad.append(imported)
    assert bad == []


@pytest.mark.parametrize("name", MODULES)
def test_no_clock_calls(name: str) -> None:
    assert _clock_calls(_tree(name)) == []
