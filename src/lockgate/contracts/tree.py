"""The parsed contract: a YAML document as nodes that remember their line and column.

A loader outside the pure core (it needs a YAML parser) turns a file into these nodes; the
rest of :mod:`lockgate.contracts` works on them alone. Mappings keep every entry, in order
and duplicates included, so that a duplicate key is reported rather than lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["MapNode", "Node", "Problem", "ScalarNode", "SeqNode", "plain"]

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class ScalarNode:
    value: Scalar
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class SeqNode:
    items: tuple[Node, ...]
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class MapNode:
    entries: tuple[tuple[ScalarNode, Node], ...]
    line: int
    column: int

    def get(self, key: str) -> Node | None:
        """The value of the first entry named ``key``."""
        for name, value in self.entries:
            if name.value == key:
                return value
        return None


Node = ScalarNode | SeqNode | MapNode


@dataclass(frozen=True, slots=True)
class Problem:
    """One error in a contract file, where it is (1-based line and column)."""

    path: str
    message: str
    line: int
    column: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.path,
            "message": self.message,
            "line": self.line,
            "column": self.column,
        }


def plain(node: Node) -> Any:
    """The node as plain data (the last of duplicate keys wins)."""
    if isinstance(node, ScalarNode):
        return node.value
    if isinstance(node, SeqNode):
        return [plain(item) for item in node.items]
    return {str(k.value): plain(v) for k, v in node.entries}
