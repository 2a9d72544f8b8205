"""Contract files: read with PyYAML into positioned nodes, checked and explained.

Plain scalars are resolved as YAML 1.2 does — only ``true``/``false`` are booleans — so the
article's ``- off`` stays the mode ``"off"`` rather than YAML 1.1's ``False``. Syntax errors
come back as problems with their line and column, never as exceptions.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from lockgate.contracts import Contract, explain, read_contract
from lockgate.contracts.tree import MapNode, Node, Problem, ScalarNode, SeqNode
from lockgate.errors import FieldProblem, InvalidInput

__all__ = [
    "MAX_SOURCE_BYTES",
    "Loaded",
    "check_contract",
    "explain_contract",
    "load",
    "load_contract_tree",
]

MAX_SOURCE_BYTES = 256 * 1024
_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


def _scalar(raw: str, plain_style: bool) -> str | int | float | bool | None:
    if not plain_style:
        return raw
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "~", ""):
        return None
    if _INT.match(raw):
        return int(raw)
    if _FLOAT.match(raw):
        return float(raw)
    return raw


class _Converter:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def node(self, raw: object) -> Node:
        import yaml

        mark = getattr(raw, "start_mark", None)
        line = (mark.line + 1) if mark is not None else 1
        column = (mark.column + 1) if mark is not None else 1
        if isinstance(raw, yaml.MappingNode):
            entries = []
            for key, value in raw.value:
                converted = self.node(key)
                if not isinstance(converted, ScalarNode):
                    self.problems.append(Problem("", "keys must be plain text", line, column))
                    continue
                entries.append((converted, self.node(value)))
            return MapNode(tuple(entries), line, column)
        if isinstance(raw, yaml.SequenceNode):
            return SeqNode(tuple(self.node(item) for item in raw.value), line, column)
        assert isinstance(raw, yaml.ScalarNode)
        return ScalarNode(_scalar(str(raw.value), raw.style is None), line, column)


MAX_DEPTH = 32
"""Deepest nesting of lists and mappings a contract may have (it needs five)."""


def _shape_problem(source: str) -> Problem | None:
    """Nesting too deep, or an alias: refused before anything recursive reads the file."""
    import yaml

    depth = 0
    for event in yaml.parse(source, Loader=yaml.SafeLoader):
        mark = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            return Problem(
                "", "anchors and aliases are not supported", mark.line + 1, mark.column + 1
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return Problem(
                    "", f"nested deeper than {MAX_DEPTH} levels", mark.line + 1, mark.column + 1
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def load_contract_tree(source: str) -> tuple[Node | None, list[Problem]]:
    """The document in ``source`` as nodes, or the syntax problems that stop it."""
    import yaml

    if len(source.encode()) > MAX_SOURCE_BYTES:
        return None, [Problem("", f"a contract is at most {MAX_SOURCE_BYTES} bytes", 1, 1)]
    try:
        shape = _shape_problem(source)
        if shape is not None:
            return None, [shape]
        raw = yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        message = f"YAML syntax error: {exc.problem or exc.context or 'unreadable'}"
        return None, [Problem("", message, line, column)]
    except yaml.YAMLError as exc:
        return None, [Problem("", f"YAML syntax error: {exc}", 1, 1)]
    if raw is None:
        return None, [Problem("", "the file is empty", 1, 1)]
    converter = _Converter()
    tree = converter.node(raw)
    return (None if converter.problems else tree), converter.problems


@dataclass(frozen=True)
class Loaded:
    contract: Contract
    tree: Node
    source: str
    filename: str
    digest: str


def _problems(found: list[Any]) -> list[FieldProblem]:
    return [FieldProblem(p.path or "(file)", p.message, p.line, p.column) for p in found]


def _read(source: str, filename: str) -> tuple[Loaded | None, list[FieldProblem]]:
    tree, found = load_contract_tree(source)
    if tree is None:
        return None, _problems(found)
    contract, found = read_contract(tree)
    if contract is None:
        return None, _problems(found)
    digest = hashlib.sha256(source.encode()).hexdigest()
    return Loaded(contract, tree, source, filename, digest), []


def load(source: str, filename: str = "") -> Loaded:
    """The checked contract, or :class:`InvalidInput` naming every field, line and column."""
    loaded, problems = _read(source, filename)
    if loaded is None:
        raise InvalidInput(f"invalid contract {filename or ''}".rstrip(), problems)
    return loaded


def check_contract(source: str, filename: str = "") -> dict[str, Any]:
    """Validation as data: valid or not, with every problem (what ``validate`` reports)."""
    loaded, problems = _read(source, filename)
    return {
        "file": filename,
        "valid": loaded is not None,
        "behavior": None if loaded is None else loaded.contract.key,
        "hash": None if loaded is None else loaded.digest,
        "problems": [p.to_dict() for p in problems],
    }


def explain_contract(source: str, filename: str = "") -> dict[str, Any]:
    loaded = load(source, filename)
    traces = [t.to_dict() for t in explain(loaded.contract, loaded.tree, loaded.source)]
    return {
        "file": filename,
        "behavior": loaded.contract.key,
        "lines": traces,
        "unenforced": [t for t in traces if t["status"] == "unenforced"],
    }
