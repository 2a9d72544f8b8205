"""The events package is pure: standard library, the policy's catalog and itself; no clock."""

from __future__ import annotations

import pytest

import lockgate.events
from tests.engine.test_purity import _clock_calls, _tree, foreign_imports, package_modules

MODULES = package_modules(lockgate.events)


def test_the_events_modules_are_found() -> None:
    assert {
        "lockgate.events.catalog",
        "lockgate.events.payloads",
        "lockgate.events.signing",
        "lockgate.events.targets",
    } <= set(MODULES)


def _allowed(name: str) -> bool:
    # urllib.parse parses only (the rest of urllib does I/O)
    return name == "urllib.parse" or name.split(".")[:2] in (
        ["lockgate", "policy"],
        ["lockgate", "events"],
    )


@pytest.mark.parametrize("name", MODULES)
def test_imports_only_stdlib_the_policy_and_the_events(name: str) -> None:
    assert foreign_imports(_tree(name), _allowed) == []


@pytest.mark.parametrize("name", MODULES)
def test_no_clock_calls(name: str) -> None:
    assert _clock_calls(_tree(name)) == []
