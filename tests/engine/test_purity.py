"""The engine is pure: standard library only, and no clock, randomness, I/O or threads."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

import lockgate.engine

FORBIDDEN_MODULES = {
    "time",
    "random",
    "secrets",
    "uuid",
    "os",
    "io",
    "pathlib",
    "shutil",
    "tempfile",
    "socket",
    "ssl",
    "http",
    "urllib",
    "logging",
    "threading",
    "multiprocessing",
    "concurrent",
    "asyncio",
    "subprocess",
    "signal",
}
"""Top-level modules that would bring a clock, randomness, I/O or concurrency."""

FORBIDDEN_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
    ("os", "urandom"),
}
"""``receiver.attribute(...)`` calls that read the clock or the environment."""


def package_modules(package: ModuleType) -> list[str]:
    """The package's own name and every module below it, sorted."""
    prefix = package.__name__ + "."
    names = [package.__name__]
    names += [m.name for m in pkgutil.walk_packages(package.__path__, prefix)]
    return sorted(names)


MODULES = package_modules(lockgate.engine)


def _tree(name: str) -> ast.Module:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    return ast.parse(Path(module.__file__).read_text(encoding="utf-8"), filename=module.__file__)


def _imports(tree: ast.Module) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "use absolute imports in the engine"
            assert node.module is not None
            found.append(node.module)
    return found


def test_the_engine_modules_are_found() -> None:
    assert {
        "lockgate.engine.bucketing",
        "lockgate.engine.codec",
        "lockgate.engine.compile",
        "lockgate.engine.evaluate",
        "lockgate.engine.operators",
        "lockgate.engine.regex",
        "lockgate.engine.validate",
    } <= set(MODULES)


def foreign_imports(tree: ast.Module, allowed: Callable[[str], bool]) -> list[str]:
    """Imports that ``allowed`` does not accept and that are not an allowed standard
    library module (one of ``FORBIDDEN_MODULES`` never is)."""
    bad = []
    for imported in _imports(tree):
        if allowed(imported):
            continue
        top = imported.split(".")[0]
        if top not in sys.stdlib_module_names or top in FORBIDDEN_MODULES:
            bad.append(imported)
    return bad


def _import_violations(tree: ast.Module) -> list[str]:
    """Imports that are neither the engine itself nor an allowed standard library module."""
    return foreign_imports(
        tree, lambda name: name == "lockgate.engine" or name.startswith("lockgate.engine.")
    )


def _clock_calls(tree: ast.Module) -> list[tuple[str, str]]:
    """``receiver.attribute(...)`` calls in FORBIDDEN_CALLS (``datetime.datetime.now()`` too)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            if isinstance(receiver, ast.Name):
                call = (receiver.id, node.func.attr)
            elif isinstance(receiver, ast.Attribute):
                call = (receiver.attr, node.func.attr)
            else:
                continue
            if call in FORBIDDEN_CALLS:
                found.append(call)
    return found


@pytest.mark.parametrize("name", MODULES)
def test_imports_only_stdlib_and_the_engine(name: str) -> None:
    assert _import_violations(_tree(name)) == []


@pytest.mark.parametrize("name", MODULES)
def test_no_clock_calls(name: str) -> None:
    assert _clock_calls(_tree(name)) == []


@pytest.mark.parametrize(
    ("source", "violations"),
    [
        pytest.param("import time\n", ["time"], id="import-time"),
        pytest.param("from os import path\n", ["os"], id="from-os"),
        pytest.param("import logging.handlers\n", ["logging.handlers"], id="submodule"),
        pytest.param("import numpy\n", ["numpy"], id="third-party"),
        pytest.param("from lockgate.sdk import x\n", ["lockgate.sdk"], id="sdk"),
        pytest.param("import json, re\nfrom datetime import UTC\n", [], id="pure-stdlib"),
        pytest.param("from lockgate.engine.model import Flag\n", [], id="engine"),
    ],
)
def test_the_import_check_catches_violations(source: str, violations: list[str]) -> None:
    assert _import_violations(ast.parse(source)) == violations


def test_the_clock_check_catches_violations() -> None:
    source = (
        "import datetime\n"
        "a = datetime.datetime.now()\n"
        "b = datetime.utcnow()\n"
        "c = time.time()\n"
        "d = datetime.fromisoformat('2025-01-01')\n"
    )
    assert _clock_calls(ast.parse(source)) == [
        ("datetime", "now"),
        ("datetime", "utcnow"),
        ("time", "time"),
    ]
