"""The policy is pure like the engine: standard library, the engine and itself; no clock."""

from __future__ import annotations

import pkgutil
import sys

import pytest

import lockgate.policy
from tests.engine.test_purity import FORBIDDEN_MODULES, _clock_calls, _imports, _tree

MODULES = sorted(
    [lockgate.policy.__name__]
    + [m.name for m in pkgutil.walk_packages(lockgate.policy.__path__, "lockgate.policy.")]
)


def test_the_policy_modules_are_found() -> None:
    assert {
        "lockgate.policy.access",
        "lockgate.policy.changes",
        "lockgate.policy.classify",
        "lockgate.policy.postures",
    } <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_imports_only_stdlib_the_engine_and_the_policy(name: str) -> None:
    bad = []
    for imported in _imports(_tree(name)):
        if imported.split(".")[:2] in (["lockgate", "engine"], ["lockgate", "policy"]):
            continue
        top = imported.split(".")[0]
        if top not in sys.stdlib_module_names or top in FORBIDDEN_MODULES:
            bad.append(imported)
    assert bad == []


@pytest.mark.parametrize("name", MODULES)
def test_no_clock_calls(name: str) -> None:
    assert _clock_calls(_tree(name)) == []
