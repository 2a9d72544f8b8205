"""Semantic validation of snapshots: every problem, with the path of the field at fault.

``validate`` lists problems; ``malformed_flags`` says which flags cannot be served
because of their own problems or of a prerequisite or segment they depend on. A snapshot
with any problem is refused by the SDK and the server before it is served.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from lockgate.engine.model import BUCKET_SPACE, Clause, Flag, FlagKind, Segment, Serve, Snapshot
from lockgate.engine.modes import Mode
from lockgate.engine.operators import OPERATORS, SEGMENT_MATCH, InvalidValueError, compile_test
from lockgate.engine.problems import Problem
from lockgate.engine.values import as_number

__all__ = [
    "NOTHING_KNOWN",
    "Changes",
    "Known",
    "contained_after",
    "known_after",
    "self_contained",
    "unchanged_parts",
    "KEY_PATTERN",
    "malformed_flags",
    "validate",
    "validate_flag",
    "validate_segment",
]

_KNOWN_OPS = ", ".join(sorted([*OPERATORS, SEGMENT_MATCH]))
MAX_RULE_ID = 128
KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}\Z")


@dataclass(frozen=True, slots=True)
class Known:
    """Flags and segments known to be valid: unchanged since a snapshot that had no
    problems, and self-contained (no prerequisites or segment references, whose targets
    may have changed). Validation skips them; nothing else differs.

    ``acyclic`` says that no prerequisite or segment-reference cycle can exist: every
    object with such references is unchanged, so the graph is part of the earlier,
    cycle-free one, and the cycle check is skipped too."""

    flags: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    acyclic: bool = False
    variations: frozenset[str] = frozenset()
    """Changed flags of the same kind whose variations are the very objects of the valid
    flag they replace: their variations are not checked again."""


NOTHING_KNOWN = Known()


@dataclass(frozen=True, slots=True)
class Changes:
    """The keys of the flags and segments replaced, added or removed between a snapshot
    and the next one; every other flag and segment is the same object in both."""

    flags: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()


def self_contained(snapshot: Snapshot) -> tuple[frozenset[str], frozenset[str]]:
    """Flags without prerequisites or segment references, and segments without segment
    references: their validity depends on nothing else."""
    flags = frozenset(k for k, f in snapshot.flags.items() if _flag_self_contained(f))
    segments = frozenset(
        k for k, s in snapshot.segments.items() if not s.rules or not _segment_refs(s)
    )
    return flags, segments


def contained_after(
    contained: tuple[frozenset[str], frozenset[str]], snapshot: Snapshot, changes: Changes
) -> tuple[frozenset[str], frozenset[str]]:
    """:func:`self_contained` of ``snapshot``, from that of the snapshot ``changes`` led
    from: costs what changed, not what the snapshot holds."""
    flags = contained[0] - changes.flags
    added = [k for k in changes.flags if (f := snapshot.flags.get(k)) and _flag_self_contained(f)]
    segments = contained[1] - changes.segments
    added_segments = [
        k
        for k in changes.segments
        if (s := snapshot.segments.get(k)) is not None and (not s.rules or not _segment_refs(s))
    ]
    return flags.union(added), segments.union(added_segments)


def known_after(
    previous: Snapshot,
    contained: tuple[frozenset[str], frozenset[str]],
    snapshot: Snapshot,
    changes: Changes,
) -> Known:
    """What :func:`unchanged_parts` finds, knowing which keys changed since the valid
    ``previous`` (whose :func:`self_contained` parts are ``contained``)."""
    acyclic = True
    same_variations = []
    for key in changes.flags:
        flag = snapshot.flags.get(key)
        if flag is None:
            continue
        if flag.prerequisites:
            acyclic = False
        old = previous.flags.get(key)
        if old is not None and old.variations is flag.variations and old.kind is flag.kind:
            same_variations.append(key)
    for key in changes.segments:
        segment = snapshot.segments.get(key)
        if segment is not None and segment.rules and _segment_refs(segment):
            acyclic = False
    return Known(
        contained[0] - changes.flags,
        contained[1] - changes.segments,
        acyclic,
        frozenset(same_variations),
    )


def unchanged_parts(snapshot: Snapshot, previous: Snapshot) -> Known:
    """What ``snapshot`` shares, object for object, with the valid ``previous``: what
    :func:`known_after` finds, with the changes found by comparing the two."""
    changes = Changes(
        _differing(snapshot.flags, previous.flags),
        _differing(snapshot.segments, previous.segments),
    )
    return known_after(previous, self_contained(previous), snapshot, changes)


def _differing(new: Mapping[str, object], old: Mapping[str, object]) -> frozenset[str]:
    """Keys added, removed, or holding another object."""
    return frozenset(key for key in new.keys() | old.keys() if new.get(key) is not old.get(key))


def validate(snapshot: Snapshot, known: Known = NOTHING_KNOWN) -> list[Problem]:
    """Every problem in ``snapshot``; an empty list means it can be served."""
    problems = [p for found in snapshot.broken.values() for p in found]
    flags: Iterable[str] = snapshot.flags
    segments: Iterable[str] = snapshot.segments
    if known is not NOTHING_KNOWN:  # only what is not known, in a stable order
        flags = sorted(snapshot.flags.keys() - known.flags)
        segments = sorted(snapshot.segments.keys() - known.segments)
    for key in flags:
        check_variations = key not in known.variations
        problems.extend(
            validate_flag(snapshot.flags[key], snapshot, check_variations=check_variations)
        )
    for key in segments:
        problems.extend(validate_segment(snapshot.segments[key], snapshot))
    if not known.acyclic:
        problems.extend(_cycle_problems(snapshot))
    for key, tool in snapshot.tools.items():
        for i, denial in enumerate(tool.deny):
            at = f"tools.{key}.deny[{i}]"
            if not denial.id:
                problems.append(Problem(f"{at}.id", "a denial needs an id"))
            problems.extend(_clause_problems(denial.clauses, f"{at}.clauses", snapshot))
    return problems


def malformed_flags(snapshot: Snapshot, known: Known = NOTHING_KNOWN) -> set[str]:
    """Flags that cannot be served: own problems, or a bad prerequisite or segment."""
    bad_segments = {
        k
        for k, s in snapshot.segments.items()
        if k not in known.segments and validate_segment(s, snapshot)
    }
    bad_segments |= {p.split(".", 1)[1] for p in snapshot.broken if p.startswith("segments.")}
    bad_segments |= _segment_cycles(snapshot)
    bad = {
        k for k, f in snapshot.flags.items() if k not in known.flags and validate_flag(f, snapshot)
    }
    bad |= {p.split(".", 1)[1] for p in snapshot.broken if p.startswith("flags.")}
    bad |= _flag_cycles(snapshot)
    segment_closure = {k: _segment_closure(k, snapshot) for k in snapshot.segments}
    changed = True
    while changed:
        changed = False
        for key, flag in snapshot.flags.items():
            if key in bad:
                continue
            used = set().union(*(segment_closure.get(s, {s}) for s in _flag_segments(flag)))
            missing_prereq = any(
                p.flag not in snapshot.flags or p.flag in bad for p in flag.prerequisites
            )
            if missing_prereq or used & bad_segments or used - snapshot.segments.keys():
                bad.add(key)
                changed = True
    return bad


def validate_flag(
    flag: Flag, snapshot: Snapshot, *, check_variations: bool = True
) -> list[Problem]:
    base = f"flags.{flag.key}"
    out = list(_key_problems(flag.key, f"{base}.key"))
    if check_variations:
        out.extend(_variation_problems(flag, base))
    names = {v.key for v in flag.variations}

    def need(name: str | None, path: str) -> None:
        if name not in names:
            out.append(Problem(path, f"unknown variation {name!r}"))

    if flag.off_variation is not None:
        need(flag.off_variation, f"{base}.off_variation")
    for i, target in enumerate(flag.targets):
        need(target.variation, f"{base}.targets[{i}].variation")
    seen_ids: set[str] = set()
    for i, rule in enumerate(flag.rules):
        path = f"{base}.rules[{i}]"
        if not rule.id or rule.id in seen_ids:
            out.append(Problem(f"{path}.id", "rule ids must be non-empty and unique"))
        elif len(rule.id) > MAX_RULE_ID:
            out.append(Problem(f"{path}.id", f"rule ids are at most {MAX_RULE_ID} characters"))
        seen_ids.add(rule.id)
        out.extend(_clause_problems(rule.clauses, f"{path}.clauses", snapshot))
        out.extend(_serve_problems(rule.serve, f"{path}.serve", names))
    out.extend(_serve_problems(flag.default, f"{base}.default", names))
    out.extend(_reversal_problems(flag, base, snapshot))
    for i, prereq in enumerate(flag.prerequisites):
        path = f"{base}.prerequisites[{i}]"
        other = snapshot.flags.get(prereq.flag)
        if other is None and f"flags.{prereq.flag}" not in snapshot.broken:
            out.append(Problem(f"{path}.flag", f"no flag {prereq.flag!r} in this snapshot"))
        elif other is not None and other.variation(prereq.variation) is None:
            out.append(
                Problem(
                    f"{path}.variation",
                    f"flag {prereq.flag!r} has no variation {prereq.variation!r}",
                )
            )
    return out


def _reversal_problems(flag: Flag, base: str, snapshot: Snapshot) -> Iterator[Problem]:
    """Exclusions (targeted rollbacks) and the incidents a flag is under."""
    seen: set[str] = set()
    for i, exclusion in enumerate(flag.exclusions):
        path = f"{base}.exclusions[{i}]"
        if not exclusion.id or exclusion.id in seen:
            yield Problem(f"{path}.id", "exclusion ids must be non-empty and unique")
        elif len(exclusion.id) > MAX_RULE_ID:
            yield Problem(f"{path}.id", f"exclusion ids are at most {MAX_RULE_ID} characters")
        seen.add(exclusion.id)
        if not exclusion.clauses:
            yield Problem(f"{path}.clauses", "an exclusion names its audience: a clause at least")
        yield from _clause_problems(exclusion.clauses, f"{path}.clauses", snapshot)
    if flag.exclusions and flag.off_variation is None:
        yield Problem(f"{base}.off_variation", "exclusions serve the off variation: set one")
    for i, incident in enumerate(flag.incidents):
        if not incident:
            yield Problem(f"{base}.incidents[{i}]", "incident ids must be non-empty")


def validate_segment(segment: Segment, snapshot: Snapshot) -> list[Problem]:
    base = f"segments.{segment.key}"
    out = list(_key_problems(segment.key, f"{base}.key"))
    for i, rule in enumerate(segment.rules):
        out.extend(_clause_problems(rule.clauses, f"{base}.rules[{i}].clauses", snapshot))
    return out


def _key_problems(key: str, path: str) -> Iterator[Problem]:
    if not KEY_PATTERN.match(key):
        yield Problem(
            path,
            "keys are 1-128 letters, digits, '_', '.', ':' or '-', starting with a letter or digit",
        )


def _variation_problems(flag: Flag, base: str) -> Iterator[Problem]:
    if not flag.variations:
        yield Problem(f"{base}.variations", "a flag needs at least one variation")
    seen: set[str] = set()
    for i, variation in enumerate(flag.variations):
        if not variation.key or variation.key in seen:
            yield Problem(
                f"{base}.variations[{i}].key", "variation keys must be non-empty and unique"
            )
        seen.add(variation.key)
        if not _value_fits(flag.kind, variation.value):
            yield Problem(
                f"{base}.variations[{i}].value", f"value does not fit kind {flag.kind.value!r}"
            )


def _value_fits(kind: FlagKind, value: object) -> bool:
    if kind is FlagKind.BOOLEAN:
        return isinstance(value, bool)
    if kind is FlagKind.STRING:
        return isinstance(value, str)
    if kind is FlagKind.NUMBER:
        return as_number(value) is not None
    if kind is FlagKind.MODE:
        return Mode.parse(value) is not None
    return True


def _serve_problems(serve: Serve, path: str, names: set[str]) -> Iterator[Problem]:
    if serve.split is None:
        if serve.variation not in names:
            yield Problem(f"{path}.variation", f"unknown variation {serve.variation!r}")
        return
    if not serve.split:
        yield Problem(f"{path}.split", "a split needs at least one variation")
        return
    for i, part in enumerate(serve.split):
        if part.variation not in names:
            yield Problem(f"{path}.split[{i}].variation", f"unknown variation {part.variation!r}")
    total = sum(part.weight for part in serve.split)
    if total != BUCKET_SPACE:
        yield Problem(
            f"{path}.split", f"weights sum to {total}; they must sum to {BUCKET_SPACE} (100 %)"
        )


def _clause_problems(clauses: Iterable[Clause], path: str, snapshot: Snapshot) -> Iterator[Problem]:
    for j, clause in enumerate(clauses):
        at = f"{path}[{j}]"
        if clause.op == SEGMENT_MATCH:
            for k, value in enumerate(clause.values):
                if not isinstance(value, str):
                    yield Problem(f"{at}.values[{k}]", "expected a segment key")
                elif value not in snapshot.segments and f"segments.{value}" not in snapshot.broken:
                    yield Problem(f"{at}.values[{k}]", f"no segment {value!r} in this snapshot")
            continue
        if clause.op not in OPERATORS:
            yield Problem(
                f"{at}.op",
                f"unknown operator {clause.op!r}; expected one of {_KNOWN_OPS}",
            )
            continue
        if not clause.attribute:
            yield Problem(f"{at}.attribute", f"operator {clause.op!r} needs an attribute")
        if not clause.values:
            yield Problem(f"{at}.values", "a clause needs at least one value")
        try:
            compile_test(clause.op, clause.values, clause.case_insensitive)
        except InvalidValueError as exc:
            yield Problem(f"{at}.values[{exc.index}]", str(exc))


def _flag_self_contained(flag: Flag) -> bool:
    return not flag.prerequisites and (
        (not flag.rules and not flag.exclusions) or not _flag_segments(flag)
    )


def _flag_segments(flag: Flag) -> set[str]:
    if not flag.rules and not flag.exclusions:
        return set()
    return {
        v
        for rule in (*flag.exclusions, *flag.rules)
        for c in rule.clauses
        if c.op == SEGMENT_MATCH
        for v in c.values
        if isinstance(v, str)
    }


def _segment_refs(segment: Segment) -> set[str]:
    if not segment.rules:
        return set()
    return {
        v
        for rule in segment.rules
        for c in rule.clauses
        if c.op == SEGMENT_MATCH
        for v in c.values
        if isinstance(v, str)
    }


def _segment_closure(key: str, snapshot: Snapshot) -> set[str]:
    seen: set[str] = set()
    stack = [key]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        segment = snapshot.segments.get(current)
        if segment is not None:
            stack.extend(_segment_refs(segment))
    return seen


def _on_cycle(edges: dict[str, set[str]]) -> set[str]:
    """Nodes that lie on a cycle of the directed graph ``edges``."""
    on_cycle: set[str] = set()
    for start, targets in edges.items():
        stack = list(targets)
        seen: set[str] = set()
        while stack:
            node = stack.pop()
            if node == start:
                on_cycle.add(start)
                break
            if node in seen:
                continue
            seen.add(node)
            stack.extend(edges.get(node, ()))
    return on_cycle


def _flag_cycles(snapshot: Snapshot) -> set[str]:
    return _on_cycle({k: {p.flag for p in f.prerequisites} for k, f in snapshot.flags.items()})


def _segment_cycles(snapshot: Snapshot) -> set[str]:
    return _on_cycle({k: _segment_refs(s) for k, s in snapshot.segments.items()})


def _cycle_problems(snapshot: Snapshot) -> Iterator[Problem]:
    flags = _flag_cycles(snapshot)
    for key in sorted(flags):
        for i, prereq in enumerate(snapshot.flags[key].prerequisites):
            if prereq.flag in flags:
                yield Problem(
                    f"flags.{key}.prerequisites[{i}].flag",
                    f"prerequisite cycle through {prereq.flag!r}",
                )
    segments = _segment_cycles(snapshot)
    for key in sorted(segments):
        for i, rule in enumerate(snapshot.segments[key].rules):
            for j, clause in enumerate(rule.clauses):
                if clause.op != SEGMENT_MATCH:
                    continue
                for k, value in enumerate(clause.values):
                    if value in segments and key in _segment_closure(value, snapshot):
                        yield Problem(
                            f"segments.{key}.rules[{i}].clauses[{j}].values[{k}]",
                            f"segment cycle through {value!r}",
                        )
