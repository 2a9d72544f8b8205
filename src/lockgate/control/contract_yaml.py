"""Contract files read with PyYAML into positioned nodes (:mod:`lockgate.contracts.tree`).

Plain scalars are resolved as YAML 1.2 does — only ``true``/``false`` are booleans — so the
article's ``- off`` stays the mode ``"off"`` rather than YAML 1.1's ``False``. Syntax errors
come back as problems with their line and column, never as exceptions.
"""

from __future__ import annotations

import re

from lockgate.contracts.tree import MapNode, Node, Problem, ScalarNode, SeqNode

__all__ = ["MAX_SOURCE_BYTES", "load_contract_tree"]

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


def load_contract_tree(source: str) -> tuple[Node | None, list[Problem]]:
    """The document in ``source`` as nodes, or the syntax problems that stop it."""
    import yaml

    if len(source.encode()) > MAX_SOURCE_BYTES:
        return None, [Problem("", f"a contract is at most {MAX_SOURCE_BYTES} bytes", 1, 1)]
    try:
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
