"""The policy is pure like the engine: standard library, the engine and itself; no clock."""

from __future__ import annotations

import pytest

import lockgate.policy
from tests.engine.test_purity import _clock_calls, _tree, foreign_imports, package_modules

MODULES = package_modules(lockgate.policy)


def test_the_policy_modules_are_found() -> None:
    assert {
        "lockgate.policy.access",
        "lockgate.policy.changes",
        "lockgate.policy.classify",
        "lockgate.policy.postures",
    } <= set(MODULES)


def _allowed(name: str) -> bool:
    return name.split(".")[:2] in (["lockgate", "engine"], ["lockgate", "policy"])


@pytest.mark.parametrize("name", MODULES)
def test_imports_only_stdlib_the_engine_and_the_policy(name: str) -> None:
    assert foreign_imports(_tree(name), _allowed) == []


@pytest.mark.parametrize("name", MODULES)
def test_no_clock_calls(name: str) -> None:
    assert _clock_calls(_tree(name)) == []
