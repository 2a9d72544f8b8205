"""Compile a snapshot once into evaluation-ready closures.

Everything that can be decided per snapshot is decided here: operators are resolved,
values parsed, regexes compiled, and the result of every fixed serve is built once and
shared, so evaluating a flag is a few closure calls and dictionary lookups with no
parsing and, on the usual path, no allocation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import accumulate
from typing import Any, TypeVar, cast

from lockgate.engine.codegen import RuleSpec, SplitSpec, generate
from lockgate.engine.model import Clause, Flag, FlagKind, Segment, Serve, Snapshot
from lockgate.engine.operators import SEGMENT_MATCH, Predicate, clause_predicate, compile_test
from lockgate.engine.result import ErrorCode, EvaluationDetail, Reason
from lockgate.engine.tools import ToolGate
from lockgate.engine.validate import (
    NOTHING_KNOWN,
    Changes,
    Known,
    contained_after,
    malformed_flags,
    self_contained,
    unchanged_parts,
)

__all__ = ["CompiledFlag", "CompiledSnapshot", "MakeResult", "compile_snapshot"]

Context = Mapping[str, Any]
Run = Callable[[Context], EvaluationDetail]
R = TypeVar("R", bound=EvaluationDetail)
MakeResult = Callable[[Any, str | None, Reason, str | None, ErrorCode | None, int | None], R]
"""Builds one shared result: ``make(value, variation, reason, rule_id, error_code,
flag_version)`` (``EvaluationDetail`` itself, or a host's subclass carrying what it keeps
per result)."""


class CompiledFlag:
    """One flag ready to evaluate: ``run(context)`` returns its shared result."""

    __slots__ = ("client_visible", "key", "kind", "on", "run", "version")

    def __init__(self, flag: Flag, run: Run, *, malformed: bool = False) -> None:
        self.key = flag.key
        self.version = flag.version
        # A malformed flag reports MALFORMED_FLAG whatever type the caller asks for.
        self.kind: FlagKind | None = None if malformed else flag.kind
        self.on = flag.on and not flag.halted
        self.client_visible = flag.client_visible
        self.run = run


class CompiledSnapshot:
    """A snapshot plus its compiled flags; immutable once built."""

    __slots__ = ("_contained", "_tools", "flags", "malformed", "snapshot")

    snapshot: Snapshot
    malformed: frozenset[str]
    flags: dict[str, CompiledFlag]

    def __init__(
        self,
        snapshot: Snapshot,
        previous: CompiledSnapshot | None = None,
        *,
        validated: Known | None = None,
        changes: Changes | None = None,
    ) -> None:
        """Compile ``snapshot``; with ``previous`` (a valid one this replaces), flags that are
        the same objects and self-contained are reused instead of recompiled, so applying a
        change costs about what the changed flags cost.

        ``validated`` is the caller's word that ``validate(snapshot, validated)`` found no
        problem (``validated`` computed against ``previous``): no flag is then malformed,
        and the check is not repeated. ``changes``, with both, names what changed since
        ``previous``: the work then no longer grows with the size of the snapshot.
        """
        self.snapshot = snapshot
        self._contained: tuple[frozenset[str], frozenset[str]] | None = None
        self._tools: ToolGate | None = None
        known = NOTHING_KNOWN
        if validated is not None:
            known = validated
            self.malformed = frozenset()
        else:
            if previous is not None and not previous.malformed and not previous.snapshot.broken:
                known = unchanged_parts(snapshot, previous.snapshot)
            self.malformed = frozenset(malformed_flags(snapshot, known))
        segments = _SegmentMatcher(snapshot.segments)
        links: Links = []
        if previous is not None and validated is not None and changes is not None:
            self._contained = contained_after(previous.contained(), snapshot, changes)
            self.flags = dict(previous.flags)
            for key in changes.flags - snapshot.flags.keys():
                self.flags.pop(key, None)
            for key in snapshot.flags.keys() - known.flags:
                flag = snapshot.flags[key]
                self.flags[key] = CompiledFlag(flag, _FlagCompiler(flag, links, segments).build())
        else:
            self.flags = {}
            for key, flag in snapshot.flags.items():
                if key in self.malformed:
                    detail = _error(ErrorCode.MALFORMED_FLAG, flag.version)
                    self.flags[key] = CompiledFlag(flag, _constant(detail), malformed=True)
                elif previous is not None and key in known.flags:
                    self.flags[key] = previous.flags[key]
                else:
                    build = _FlagCompiler(flag, links, segments).build()
                    self.flags[key] = CompiledFlag(flag, build)
        for path in snapshot.broken:
            kind, _, key = path.partition(".")
            if kind == "flags" and key not in self.flags:
                stub = Flag(key, 0, FlagKind.JSON, (), Serve())
                self.flags[key] = CompiledFlag(
                    stub, _constant(_error(ErrorCode.MALFORMED_FLAG, None)), malformed=True
                )
        for required, wanted in links:
            required.extend((self.flags.get(key, _ABSENT), variation) for key, variation in wanted)

    def tool_gate(self) -> ToolGate:
        """The snapshot's tools, ready to decide calls (built on first use; a race builds
        two equal gates, one of which is kept)."""
        gate = self._tools
        if gate is None:
            gate = self._tools = ToolGate(
                self.snapshot, _SegmentMatcher(self.snapshot.segments).clause
            )
        return gate

    def compile_flag(self, key: str, make: MakeResult[R]) -> Callable[[Context], R] | None:
        """Flag ``key`` compiled again with its shared results built by ``make``: the same
        evaluation (``run(ctx)`` equals ``self.flags[key].run(ctx)``), each result it can
        return (a serve's, or the missing-attribute error) made once by ``make`` instead
        of ``EvaluationDetail``. ``None`` when the snapshot has no such flag or it is
        malformed."""
        flag = self.snapshot.flags.get(key)
        compiled = self.flags.get(key)
        if flag is None or compiled is None or compiled.kind is None:
            return None
        links: Links = []
        run = _FlagCompiler(flag, links, _SegmentMatcher(self.snapshot.segments), make).build()
        for required, wanted in links:
            required.extend((self.flags.get(k, _ABSENT), variation) for k, variation in wanted)
        return cast("Callable[[Context], R]", run)  # every result it returns, make built

    def contained(self) -> tuple[frozenset[str], frozenset[str]]:
        """The snapshot's self-contained flags and segments (``validate.self_contained``)."""
        if self._contained is None:
            self._contained = self_contained(self.snapshot)
        return self._contained

    def evaluate(
        self, key: str, context: Any, default: Any = None, expected: FlagKind | None = None
    ) -> EvaluationDetail:
        """Evaluate flag ``key``; never raises. See :func:`lockgate.engine.evaluate`."""
        flag = self.flags.get(key)
        if flag is None:
            return EvaluationDetail(
                default, None, Reason.ERROR, None, ErrorCode.FLAG_NOT_FOUND, None
            )
        if expected is not None and flag.kind is not expected and flag.kind is not None:
            return EvaluationDetail(
                default, None, Reason.ERROR, None, ErrorCode.TYPE_MISMATCH, flag.version
            )
        if context.__class__ is not dict and not isinstance(context, Mapping):
            return EvaluationDetail(
                default, None, Reason.ERROR, None, ErrorCode.INVALID_CONTEXT, flag.version
            )
        try:
            result = flag.run(context)
        except Exception:  # evaluation must never raise into the application
            return EvaluationDetail(
                default, None, Reason.ERROR, None, ErrorCode.GENERAL, flag.version
            )
        if result.variation is None:
            return result.with_default(default)
        return result


def compile_snapshot(snapshot: Snapshot) -> CompiledSnapshot:
    return CompiledSnapshot(snapshot)


def _error(code: ErrorCode, version: int | None) -> EvaluationDetail:
    return EvaluationDetail(None, None, Reason.ERROR, None, code, version)


def _constant(detail: EvaluationDetail) -> Run:
    def run(ctx: Context) -> EvaluationDetail:
        return detail

    return run


_ABSENT = CompiledFlag(
    Flag("", 0, FlagKind.JSON, (), Serve(), on=False),
    _constant(_error(ErrorCode.FLAG_NOT_FOUND, None)),
)
"""Stands for a prerequisite missing from the snapshot (only in one that failed to
validate, where the flags needing it are malformed): it is never on."""


class _SegmentMatcher:
    """Membership tests for segments, compiled on first use (segments nest)."""

    def __init__(self, segments: dict[str, Segment]) -> None:
        self.segments = segments
        self.compiled: dict[str, Predicate] = {}

    def predicate(self, key: str) -> Predicate:
        found = self.compiled.get(key)
        if found is None:
            found = self._compile(self.segments[key])
            self.compiled[key] = found
        return found

    def _compile(self, segment: Segment) -> Predicate:
        included = frozenset(segment.included)
        excluded = frozenset(segment.excluded)
        rules = [_all_of([self.clause(c) for c in rule.clauses]) for rule in segment.rules]
        attribute = segment.attribute

        def member(ctx: Context) -> bool:
            value = ctx.get(attribute)
            if value.__class__ is str:
                if value in included:
                    return True
                if value in excluded:
                    return False
            return any(rule(ctx) for rule in rules)

        return member

    def clause(self, clause: Clause) -> Predicate:
        if clause.op == SEGMENT_MATCH:
            # Resolved lazily so that nested segments compile in any order.
            keys = tuple(clause.values)
            negate = clause.negate

            def in_segment(ctx: Context) -> bool:
                return any(self.predicate(k)(ctx) for k in keys) != negate

            return in_segment
        test = compile_test(clause.op, clause.values, clause.case_insensitive)
        return clause_predicate(
            clause.attribute or "",
            clause.op,
            test,
            clause.negate,
            clause.values,
            clause.case_insensitive,
        )


def _all_of(predicates: list[Predicate]) -> Predicate:
    if not predicates:
        return lambda ctx: True
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda ctx: first(ctx) and second(ctx)
    return lambda ctx: all(p(ctx) for p in predicates)


Links = list[tuple[list[tuple[CompiledFlag, str]], list[tuple[str, str]]]]
"""Prerequisites to resolve once all flags are compiled: (to fill, [(flag, variation)])."""


class _FlagCompiler:
    def __init__(
        self,
        flag: Flag,
        links: Links,
        segments: _SegmentMatcher,
        make: MakeResult[EvaluationDetail] = EvaluationDetail,
    ) -> None:
        self.flag = flag
        self.links = links
        self.segments = segments
        self.make = make

    def detail(
        self, variation: str | None, reason: Reason, rule_id: str | None = None
    ) -> EvaluationDetail:
        found = self.flag.variation(variation)
        value = None if found is None else found.value
        return self.make(
            value, variation if found else None, reason, rule_id, None, self.flag.version
        )

    def build(self) -> Run:
        flag = self.flag
        if flag.killed:
            return _constant(self.detail(flag.off_variation, Reason.KILLED))
        if flag.incidents:
            return _constant(self.detail(flag.off_variation, Reason.INCIDENT))
        if not flag.on:
            return _constant(self.detail(flag.off_variation, Reason.OFF))
        return self.with_exclusions(self.with_prerequisites(self.targets_rules_default()))

    def with_exclusions(self, body: Run) -> Run:
        """Excluded audiences (targeted rollbacks) get the off variation before anything."""
        if not self.flag.exclusions:
            return body
        excluded = [
            (
                _all_of([self.segments.clause(c) for c in x.clauses]),
                self.detail(self.flag.off_variation, Reason.EXCLUDED, x.id),
            )
            for x in self.flag.exclusions
        ]

        def run(ctx: Context) -> EvaluationDetail:
            for matches, result in excluded:
                if matches(ctx):
                    return result
            return body(ctx)

        return run

    def with_prerequisites(self, body: Run) -> Run:
        flag = self.flag
        if not flag.prerequisites:
            return body
        failed = self.detail(flag.off_variation, Reason.PREREQUISITE_FAILED)
        # Filled in by the snapshot once every flag is compiled: the evaluator refers to
        # the flags it needs, not to the snapshot's table (which refers to the evaluator),
        # so a replaced snapshot is freed without the cycle collector.
        required: list[tuple[CompiledFlag, str]] = []
        self.links.append((required, [(p.flag, p.variation) for p in flag.prerequisites]))

        def with_prerequisites(ctx: Context) -> EvaluationDetail:
            for other, variation in required:
                if not other.on or other.run(ctx).variation != variation:
                    return failed
            return body(ctx)

        return with_prerequisites

    def targets_rules_default(self) -> Run:
        body = self.rules_default()
        targets = self.targets()
        if not targets:
            return body

        def run(ctx: Context) -> EvaluationDetail:
            for attribute, table in targets:
                value = ctx.get(attribute)
                if value.__class__ is str:
                    found = table.get(value)
                    if found is not None:
                        return found
            return body(ctx)

        return run

    def rules_default(self) -> Run:
        rules = [
            RuleSpec(rule.clauses, *self.serve(rule.serve, Reason.RULE_MATCH, rule.id))
            for rule in self.flag.rules
        ]
        default = RuleSpec((), *self.serve(self.flag.default, Reason.FALLTHROUGH, None))
        if not rules and default.split is None:
            return _constant(default.fixed)  # one fixed answer: no code to generate
        return generate(rules, default, self.segments.clause)

    def targets(self) -> tuple[tuple[str, dict[str, EvaluationDetail]], ...]:
        tables: dict[str, dict[str, EvaluationDetail]] = {}
        for target in self.flag.targets:
            table = tables.setdefault(target.attribute, {})
            result = self.detail(target.variation, Reason.TARGET_MATCH)
            for value in target.values:
                table.setdefault(value, result)
        return tuple(tables.items())

    def serve(
        self, serve: Serve, reason: Reason, rule_id: str | None
    ) -> tuple[EvaluationDetail, SplitSpec | None]:
        if serve.split is None:
            return self.detail(serve.variation, reason, rule_id), None
        parts = [p for p in serve.split if p.weight > 0]
        return self.detail(None, Reason.SPLIT, rule_id), SplitSpec(
            bounds=list(accumulate(p.weight for p in parts)),
            results=[self.detail(p.variation, Reason.SPLIT, rule_id) for p in parts],
            attribute=serve.bucket_by or self.flag.bucket_by,
            salt=self.flag.effective_salt,
            missing=self.make(
                None, None, Reason.ERROR, None, ErrorCode.TARGETING_KEY_MISSING, self.flag.version
            ),
        )
