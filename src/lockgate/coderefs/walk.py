"""The files of a tree worth scanning, honouring ``.gitignore`` files at every level.

Only files of the languages below are read; ``.git`` and anything a ``.gitignore`` (of the
directory or any parent inside the tree) ignores are skipped, as git would.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pathspec

__all__ = ["LANGUAGES", "language_of", "walk"]

LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".mts": "typescript",
    ".go": "go",
    ".java": "java",
    ".kt": "java",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
}


def language_of(name: str) -> str | None:
    return LANGUAGES.get(os.path.splitext(name)[1].lower())


_Rules = list[tuple[str, pathspec.PathSpec[Any]]]


def _ignored(rules: _Rules, path: str, is_dir: bool) -> bool:
    """Whether the last rule that has an opinion about ``path`` ignores it."""
    verdict = False
    for base, spec in rules:
        relative = path[len(base) :] if base else path
        result = spec.check_file(relative + ("/" if is_dir else ""))
        if result.include is not None:
            verdict = result.include
    return verdict


def _rules_of(directory: str) -> pathspec.PathSpec[Any] | None:
    try:
        with open(os.path.join(directory, ".gitignore"), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    return pathspec.GitIgnoreSpec.from_lines(lines)


def walk(root: str | Path) -> Iterator[tuple[str, str, str]]:
    """``(path, path relative to root with /, language)`` of every file to scan."""
    top = os.fspath(root)
    stack: list[tuple[str, str, _Rules]] = [(top, "", [])]
    while stack:
        directory, relative, inherited = stack.pop()
        spec = _rules_of(directory)
        rules = [*inherited, (relative, spec)] if spec is not None else inherited
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        subdirectories = []
        for entry in entries:
            name = entry.name
            path = relative + name
            if entry.is_dir(follow_symlinks=False):
                if name != ".git" and not (rules and _ignored(rules, path, True)):
                    subdirectories.append((entry.path, path + "/", rules))
                continue
            language = language_of(name)
            if language is None or not entry.is_file(follow_symlinks=False):
                continue
            if rules and _ignored(rules, path, False):
                continue
            yield entry.path, path, language
        stack.extend(reversed(subdirectories))
