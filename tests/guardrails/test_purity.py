"""The guardrails package is pure: standard library, lockgate.errors and itself; no clock
(the time comes in as an argument)."""

from __future__ import annotations

import pytest

import lockgate.guardrails
from tests.engine.test_purity import _clock_calls, _tree, foreign_imports, package_modules

MODULES = package_modules(lockgate.guardrails)


def test_the_modules_are_found() -> None:
    assert {
        "lockgate.guardrails.stats",
        "lockgate.guardrails.evaluate",
        "lockgate.guardrails.model",
        "lockgate.guardrails.plans",
    } <= set(MODULES)


def _allowed(name: str) -> bool:
    return name == "lockgate.errors" or name.split(".")[:2] == ["lockgate", "guardrails"]


@pytest.mark.parametrize("name", MODULES)
def test_imports_only_stdlib_errors_and_itself(name: str) -> None:
    assert foreign_imports(_tree(name), _allowed) == []


@pytest.mark.parametrize("name", MODULES)
def test_no_clock_calls(name: str) -> None:
    assert _clock_calls(_tree(name)) == []
