"""Generate one Python function per flag for its rules and default serve.

Closures per clause cost a Python call each; a generated function tests every clause
inline, so evaluating a flag is one call. The source contains only names this module
invents (``a0``, ``s0``, ``r0``…); every value from the snapshot — attribute names,
operands, results — is passed in through the function's namespace, never written into
the source, so no snapshot content is ever executed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping
from functools import lru_cache
from hashlib import sha256
from types import CodeType
from typing import Any

from lockgate.engine.bucketing import bucket_value
from lockgate.engine.model import BUCKET_SPACE, Clause
from lockgate.engine.operators import (
    SEGMENT_MATCH,
    Predicate,
    compile_test,
    general_test,
    inline_string_test,
)
from lockgate.engine.result import EvaluationDetail

__all__ = ["RuleSpec", "SplitSpec", "generate"]

Context = Mapping[str, Any]
Run = Callable[[Context], EvaluationDetail]


class SplitSpec:
    """A percentage split: its cumulative bounds, results and bucketing inputs."""

    def __init__(
        self,
        bounds: list[int],
        results: list[EvaluationDetail],
        attribute: str,
        salt: str,
        missing: EvaluationDetail,
    ) -> None:
        self.bounds = bounds
        self.results = results
        self.attribute = attribute
        self.prefix = f"{salt}/".encode()
        self.missing = missing


class RuleSpec:
    def __init__(
        self, clauses: tuple[Clause, ...], fixed: EvaluationDetail, split: SplitSpec | None
    ) -> None:
        self.clauses = clauses
        self.fixed = fixed
        self.split = split


class _Source:
    def __init__(self, segment_clause: Callable[[Clause], Predicate]) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {
            "sha256": sha256,
            "from_bytes": int.from_bytes,
            "bisect_right": bisect_right,
            "bucket_value": bucket_value,
            "SPACE": BUCKET_SPACE,
        }
        self.segment_clause = segment_clause

    def name(self, prefix: str, value: Any) -> str:
        name = f"{prefix}{len(self.names)}"
        self.names[name] = value
        return name

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def condition(self, clause: Clause) -> str:
        if clause.op == SEGMENT_MATCH:
            return f"{self.name('p', self.segment_clause(clause))}(ctx)"
        test = compile_test(clause.op, clause.values, clause.case_insensitive)
        attribute = self.name("a", clause.attribute or "")
        general = self.name("g", general_test(test, op=clause.op, negate=clause.negate))
        inline = (
            None
            if clause.negate
            else inline_string_test(clause.op, clause.values, clause.case_insensitive)
        )
        if inline is None:
            return f"{general}(get({attribute}))"
        template, operand = inline
        string_test = template.format(v="v", x=self.name("s", operand))
        return (
            f"(((v := get({attribute})).__class__ is str and {string_test}) "
            f"or (v.__class__ is not str and v is not None and {general}(v)))"
        )

    def serve(self, depth: int, fixed: EvaluationDetail, split: SplitSpec | None) -> None:
        if split is None:
            self.emit(depth, f"return {self.name('r', fixed)}")
            return
        attribute = self.name("a", split.attribute)
        self.emit(depth, f"k = get({attribute})")
        self.emit(depth, "if k.__class__ is not str:")
        self.emit(depth + 1, "k = bucket_value(k)")
        self.emit(depth + 1, "if k is None:")
        self.emit(depth + 2, f"return {self.name('r', split.missing)}")
        prefix = self.name("b", split.prefix)
        self.emit(
            depth,
            f"h = (from_bytes(sha256({prefix} + k.encode()).digest()[:8], 'big') * SPACE) >> 64",
        )
        if len(split.results) == 2:
            low, high = (self.name("r", r) for r in split.results)
            self.emit(depth, f"return {low} if h < {self.name('t', split.bounds[0])} else {high}")
        else:
            bounds, results = self.name("t", split.bounds), self.name("r", split.results)
            self.emit(depth, f"return {results}[bisect_right({bounds}, h)]")


@lru_cache(maxsize=4096)
def _compiled_source(text: str) -> CodeType:
    """Bytecode per distinct source: flags of the same shape share it (values differ only
    in the namespace each one is executed with)."""
    return compile(text, "<lockgate flag>", "exec")


def generate(
    rules: list[RuleSpec],
    default: RuleSpec,
    segment_clause: Callable[[Clause], Predicate],
) -> Run:
    """One function evaluating ``rules`` in order, then ``default``."""
    source = _Source(segment_clause)
    source.emit(0, "def run(ctx):")
    source.emit(1, "get = ctx.get")
    for rule in rules:
        if rule.clauses:
            # One flat ``and`` chain: clauses are tested in order and stop at the first miss.
            source.emit(1, "if " + " and ".join(source.condition(c) for c in rule.clauses) + ":")
            source.serve(2, rule.fixed, rule.split)
        else:
            source.serve(1, rule.fixed, rule.split)
    source.serve(1, default.fixed, default.split)
    namespace = dict(source.names)
    exec(_compiled_source("\n".join(source.lines) + "\n"), namespace)  # noqa: S102 - source built from fixed templates; values passed by name
    run: Run = namespace.pop("run")  # no function <-> globals cycle: freed by refcount
    return run
