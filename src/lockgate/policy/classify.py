"""Is a configuration change a reduction or an expansion of exposure and authority?

Pure: a function of two environment snapshots (the engine's model), before and after one
change. The rule is conservative — **anything not provably a reduction is an expansion**
— and the proof is structural, over the engine's own evaluation order:

* Every variation has a *rank*. For ``mode`` behaviors it is the mode's authority
  (``off < fallback < observe < draft_only < approval_required < full``); for booleans
  ``false < true``; for other kinds the off (fallback) variation ranks 0 and every other
  variation 1. A flag missing from the snapshot (archived, not yet created) and an
  evaluation error serve the application's own safe default: rank 0.
* A flag evaluates as a *decision list*: failed prerequisites, then targets, then rules,
  then the default; the first entry that matches serves. Entries are matched up between
  the two versions by identity (a rule by its id and clauses, a target by attribute and
  value). A change is a reduction when every context provably lands on an entry that
  serves it no higher rank than before: kept entries serve no more (compared bucket by
  bucket when a percentage split keeps its bucketing), a removed entry's contexts fall
  through only to entries ranked no higher than it, an added entry ranks no higher than
  anything it can take contexts from.
* A segment edit counts for every flag that uses it. A provably narrower segment shrinks
  the rules that name it (widens those that name it negated); each such rule must then
  pass the same fall-through test. Flags that name the segment through another segment,
  or an edit that neither narrows nor widens, count as expansions.
* A reduced flag that is another flag's prerequisite reduces that flag too only when the
  required variation is the unique top of its rank order; otherwise it is an expansion.

Soundness is checked by a property test that evaluates random contexts with the engine
before and after random changes (tests/policy/test_classify.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from lockgate.engine.model import (
    BUCKET_SPACE,
    Clause,
    Flag,
    FlagKind,
    Segment,
    Serve,
    Snapshot,
)
from lockgate.engine.modes import Mode
from lockgate.engine.operators import SEGMENT_MATCH

__all__ = [
    "Classification",
    "Direction",
    "classify_snapshots",
    "flag_rank",
    "most_severe",
]

_TOP = 1 << 30  # the rank of a value that names no known authority: treated as the highest


class Direction(StrEnum):
    """What a change does to exposure or authority, from least to most governed."""

    NONE = "none"  # no context is served anything different
    REDUCTION = "reduction"
    EXPANSION = "expansion"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Direction.NONE: 0, Direction.REDUCTION: 1, Direction.EXPANSION: 2}


@dataclass(frozen=True, slots=True)
class Classification:
    """The direction of a change in one environment, with the reasons that decided it."""

    direction: Direction
    flags: tuple[str, ...] = ()  # the behaviors whose exposure the change touches
    reasons: tuple[str, ...] = ()

    @property
    def is_expansion(self) -> bool:
        return self.direction is Direction.EXPANSION


def most_severe(items: Iterable[Classification]) -> Classification:
    """One classification for several environments or behaviors: the strictest wins."""
    direction = Direction.NONE
    flags: list[str] = []
    reasons: list[str] = []
    for item in items:
        if item.direction.severity > direction.severity:
            direction = item.direction
        flags.extend(f for f in item.flags if f not in flags)
        reasons.extend(r for r in item.reasons if r not in reasons)
    return Classification(direction, tuple(flags), tuple(reasons))


Rank = Callable[[str | None], int]


def flag_rank(flag: Flag | None) -> Rank:
    """The rank function of one flag's variations (see the module's docstring)."""
    if flag is None:
        return lambda _variation: 0
    values = {v.key: v.value for v in flag.variations}
    if flag.kind is FlagKind.MODE:

        def mode_rank(variation: str | None) -> int:
            if variation is None:
                return 0
            mode = Mode.parse(values.get(variation))
            return _TOP if mode is None else mode.rank

        return mode_rank
    if flag.kind is FlagKind.BOOLEAN:

        def bool_rank(variation: str | None) -> int:
            if variation is None:
                return 0
            value = values.get(variation)
            return 0 if value is False else 1 if value is True else _TOP

        return bool_rank
    fallback = flag.off_variation

    def fallback_rank(variation: str | None) -> int:
        return 0 if variation is None or variation == fallback else 1

    return fallback_rank


# --- outcomes: what an entry serves, as a step function over the bucket space -----------


@dataclass(frozen=True, slots=True)
class _Outcome:
    """A fixed variation (one step) or a split (steps over buckets of one attribute)."""

    steps: tuple[tuple[int, str | None], ...]  # (upper bound, variation), ascending bounds
    bucketing: tuple[str, str] | None  # (attribute, salt) for splits

    def ranks(self, rank: Rank) -> list[int]:
        return [rank(v) for _, v in self.steps]


def _outcome(flag: Flag, serve: Serve) -> _Outcome:
    if serve.split is None:
        return _Outcome(((BUCKET_SPACE, serve.variation),), None)
    steps: list[tuple[int, str | None]] = []
    bound = 0
    for part in serve.split:
        if part.weight > 0:
            bound += part.weight
            steps.append((bound, part.variation))
    attribute = serve.bucket_by or flag.bucket_by
    return _Outcome(tuple(steps), (attribute, flag.effective_salt))


def _fixed(variation: str | None) -> _Outcome:
    return _Outcome(((BUCKET_SPACE, variation),), None)


def _max(outcome: _Outcome, rank: Rank) -> int:
    return max(outcome.ranks(rank), default=0)


def _min(outcome: _Outcome, rank: Rank) -> int:
    # A split also serves an error (rank 0) to contexts without its bucketing attribute.
    floor = min(outcome.ranks(rank), default=0)
    return 0 if outcome.bucketing is not None else floor


def _pointwise_no_higher(
    after: _Outcome, rank_after: Rank, before: _Outcome, rank_before: Rank
) -> bool:
    """Every context served ``after`` gets no higher rank than it got from ``before``."""
    if after.bucketing is None and before.bucketing is None:
        return _max(after, rank_after) <= _min(before, rank_before)
    if after.bucketing is not None and after.bucketing == before.bucketing:
        # Same buckets on both sides (and the same error for contexts without the
        # attribute): compare the two step functions on every interval.
        bounds = sorted({b for b, _ in after.steps} | {b for b, _ in before.steps})
        for bound in bounds:
            if _at(after, bound - 1, rank_after) > _at(before, bound - 1, rank_before):
                return False
        return True
    return _max(after, rank_after) <= _min(before, rank_before)


def _at(outcome: _Outcome, bucket: int, rank: Rank) -> int:
    for bound, variation in outcome.steps:
        if bucket < bound:
            return rank(variation)
    return 0


# --- decision lists -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    ident: tuple[object, ...]
    outcome: _Outcome
    segments: frozenset[str]  # segments the entry's clauses name directly
    polarity: dict[str, int]  # per segment: +1 named, -1 named negated, 0 both


def _clause_segments(clauses: Sequence[Clause]) -> tuple[frozenset[str], dict[str, int]]:
    polarity: dict[str, int] = {}
    for clause in clauses:
        if clause.op != SEGMENT_MATCH:
            continue
        sign = -1 if clause.negate else 1
        for key in clause.values:
            name = str(key)
            polarity[name] = sign if polarity.get(name, sign) == sign else 0
    return frozenset(polarity), polarity


def _entries(flag: Flag) -> list[_Entry]:
    """The flag's decision list, in evaluation order (an ``off`` flag is one entry)."""
    if not flag.on or flag.halted:  # off, killed or under an incident: the fallback
        return [_Entry(("off",), _fixed(flag.off_variation), frozenset(), {})]
    entries = []
    for exclusion in flag.exclusions:
        names, polarity = _clause_segments(exclusion.clauses)
        entries.append(
            _Entry(
                ("exclusion", exclusion.id, exclusion.clauses),
                _fixed(flag.off_variation),
                names,
                polarity,
            )
        )
    entries.extend(
        _Entry(("prerequisite", p.flag, p.variation), _fixed(flag.off_variation), frozenset(), {})
        for p in flag.prerequisites
    )
    seen: set[tuple[str, str]] = set()
    for target in flag.targets:
        for value in target.values:
            if (target.attribute, value) in seen:
                continue  # an earlier target already serves this value
            seen.add((target.attribute, value))
            entries.append(
                _Entry(
                    ("target", target.attribute, value),
                    _fixed(target.variation),
                    frozenset(),
                    {},
                )
            )
    for rule in flag.rules:
        names, polarity = _clause_segments(rule.clauses)
        entries.append(
            _Entry(("rule", rule.id, rule.clauses), _outcome(flag, rule.serve), names, polarity)
        )
    entries.append(_Entry(("default",), _outcome(flag, flag.default), frozenset(), {}))
    return entries


def _serving(flag: Flag) -> bool:
    """Whether the flag's rules decide anything (it is on, not killed, no incident)."""
    return flag.on and not flag.halted


def _target_order_kept(
    before: list[_Entry], after: list[_Entry], common: set[tuple[object, ...]]
) -> bool:
    """Targets of different attributes keep their precedence (one attribute table each)."""

    def attributes(entries: list[_Entry]) -> list[object]:
        order: list[object] = []
        for e in entries:
            if e.ident[0] == "target" and e.ident in common and e.ident[1] not in order:
                order.append(e.ident[1])
        return order

    return attributes(before) == attributes(after)


def _compare_lists(
    before: list[_Entry], rank_before: Rank, after: list[_Entry], rank_after: Rank
) -> tuple[Direction, str]:
    """Reduction, none or expansion for one flag whose segments did not change."""
    before_ids = [e.ident for e in before]
    after_ids = [e.ident for e in after]
    if (
        before_ids == after_ids
        and all(b.outcome == a.outcome for b, a in zip(before, after, strict=True))
        and _same_ranks(before, rank_before, rank_after)
    ):
        return Direction.NONE, "nothing served changes"
    if len(before) == 1 and before[0].ident == ("off",):
        off = before[0].outcome
        if all(_pointwise_no_higher(e.outcome, rank_after, off, rank_before) for e in after):
            return Direction.REDUCTION, "stays at or below what the off state served"
        return Direction.EXPANSION, "turns the behavior on, serving more than the off state"
    if len(after) == 1 and after[0].ident == ("off",):
        floor = min(_min(e.outcome, rank_before) for e in before)
        if _max(after[0].outcome, rank_after) <= floor:
            return Direction.REDUCTION, "turned off: everyone gets the fallback"
        return Direction.EXPANSION, "turned off, but the off variation ranks above what some got"
    problem = _list_problem(before, rank_before, after, rank_after)
    if problem:
        return Direction.EXPANSION, problem
    return Direction.REDUCTION, "no audience is served more than before"


def _list_problem(
    before: list[_Entry], rank_before: Rank, after: list[_Entry], rank_after: Rank
) -> str | None:
    """Why the change of a decision list may serve someone more, or ``None``."""
    common = {e.ident for e in before} & {e.ident for e in after}
    kept_before = [e.ident for e in before if e.ident in common]
    kept_after = [e.ident for e in after if e.ident in common]
    if kept_before != kept_after or not _target_order_kept(before, after, common):
        return "rules or targets were reordered"
    old = {e.ident: e for e in before}
    new = {e.ident: e for e in after}
    for ident in kept_before:
        if not _pointwise_no_higher(
            new[ident].outcome, rank_after, old[ident].outcome, rank_before
        ):
            return f"{_describe(old[ident])} serves more than before"
    added = [e for e in after if e.ident not in common]
    for index, entry in enumerate(before):
        if entry.ident in common:
            continue
        # Contexts of a removed entry fall through to later kept entries or added ones.
        floor = _min(entry.outcome, rank_before)
        catchers = [new[e.ident] for e in before[index + 1 :] if e.ident in common] + added
        if any(_max(e.outcome, rank_after) > floor for e in catchers):
            return f"removing {_describe(entry)} lets its audience reach more"
    removed_floor = min(
        (_min(e.outcome, rank_before) for e in before if e.ident not in common), default=_TOP
    )
    for index, entry in enumerate(after):
        if entry.ident in common:
            continue
        # An added entry takes contexts from kept entries after it, or from removed ones.
        ceiling = _max(entry.outcome, rank_after)
        overridden = [old[e.ident] for e in after[index + 1 :] if e.ident in common]
        if ceiling > removed_floor or any(
            ceiling > _min(e.outcome, rank_before) for e in overridden
        ):
            return f"{_describe(entry)} serves more than what it takes over"
    return None


def _same_ranks(entries: list[_Entry], rank_before: Rank, rank_after: Rank) -> bool:
    return all(e.outcome.ranks(rank_before) == e.outcome.ranks(rank_after) for e in entries)


def _describe(entry: _Entry) -> str:
    kind = entry.ident[0]
    if kind == "rule":
        return f"rule {entry.ident[1]!r}"
    if kind == "target":
        return f"the target {entry.ident[1]}={entry.ident[2]!r}"
    if kind == "prerequisite":
        return f"the prerequisite on {entry.ident[1]!r}"
    return str(kind)


# --- segments -----------------------------------------------------------------------------


def _segment_direction(before: Segment | None, after: Segment | None) -> Direction | None:
    """``REDUCTION`` if it provably matches no more contexts, ``EXPANSION`` if no fewer."""
    if before == after:
        return Direction.NONE
    if before is None or after is None:
        return None
    if before.attribute != after.attribute:
        return None
    b_in, a_in = set(before.included), set(after.included)
    b_out, a_out = set(before.excluded), set(after.excluded)
    b_rules, a_rules = set(before.rules), set(after.rules)
    if a_in <= b_in and a_out >= b_out and a_rules <= b_rules:
        # Included keys that became excluded are still fewer matches; a key newly excluded
        # that was not included only stops rule matches.
        return Direction.REDUCTION
    if a_in >= b_in and a_out <= b_out and a_rules >= b_rules:
        return Direction.EXPANSION
    return None


def _nested_users(snapshot: Snapshot, changed: set[str]) -> set[str]:
    """Segments that name a changed segment through their own rules (transitively)."""
    users: set[str] = set()
    grew = True
    while grew:
        grew = False
        for key, segment in snapshot.segments.items():
            if key in users or key in changed:
                continue
            named = {
                str(v)
                for r in segment.rules
                for c in r.clauses
                if c.op == SEGMENT_MATCH
                for v in c.values
            }
            if named & (changed | users):
                users.add(key)
                grew = True
    return users


def _segment_effect(
    flag: Flag, rank: Rank, directions: dict[str, Direction], indirect: set[str]
) -> tuple[Direction, str]:
    entries = _entries(flag)
    touched = False
    for index, entry in enumerate(entries):
        names = entry.segments & (set(directions) | indirect)
        if not names:
            continue
        touched = True
        if names & indirect:
            return Direction.EXPANSION, "uses a segment that names an edited segment"
        moves: set[int] = set()
        for name in names:
            direction = directions[name]
            sign = entry.polarity[name]
            if direction is Direction.NONE:
                continue
            if sign == 0:
                return Direction.EXPANSION, f"names segment {name!r} both ways"
            shrinks = (direction is Direction.REDUCTION) == (sign > 0)
            moves.add(-1 if shrinks else 1)
        later = entries[index + 1 :]
        if -1 in moves:  # contexts leave this rule and fall through
            floor = _min(entry.outcome, rank)
            if any(_max(e.outcome, rank) > floor for e in later):
                return (
                    Direction.EXPANSION,
                    f"{_describe(entry)} loses contexts to entries serving more",
                )
        if 1 in moves:  # contexts join this rule from later entries
            ceiling = _max(entry.outcome, rank)
            if any(ceiling > _min(e.outcome, rank) for e in later):
                return (
                    Direction.EXPANSION,
                    f"{_describe(entry)} takes contexts that were served less",
                )
    if not touched:
        return Direction.NONE, "does not use the segment"
    return Direction.REDUCTION, "narrower audience"


# --- the snapshot-level classifier --------------------------------------------------------


def classify_snapshots(
    before: Snapshot,
    after: Snapshot,
    *,
    flags: Iterable[str] = (),
    segments: Iterable[str] = (),
) -> Classification:
    """Classify the change from ``before`` to ``after`` of the named flags and segments.

    Objects not named are assumed unchanged (the caller knows what it changed); the
    direction is the most severe over every flag the change can reach.

    A killed flag, or one under an incident, serves its fallback whatever its rules say, so
    an edit of those rules changes nothing served *now* — but it is what lifting the kill
    or ending the incident will serve. Such edits are therefore classified twice: as
    served, and with every kill and incident lifted; the more severe answer counts.
    """
    flags, segments = tuple(flags), tuple(segments)
    served = _classify(before, after, flags, segments)
    if not _any_halted(before) and not _any_halted(after):
        return served
    underlying = _classify(_unhalted(before), _unhalted(after), flags, segments)
    if underlying.direction.severity <= served.direction.severity:
        return served
    return Classification(
        underlying.direction,
        underlying.flags,
        tuple(f"once the kill or incident is lifted: {r}" for r in underlying.reasons),
    )


def _any_halted(snapshot: Snapshot) -> bool:
    return any(flag.halted for flag in snapshot.flags.values())


def _unhalted(snapshot: Snapshot) -> Snapshot:
    """The snapshot with every kill and incident lifted (what lifting them would serve)."""
    lifted = {
        key: replace(flag, killed=False, incidents=()) if flag.halted else flag
        for key, flag in snapshot.flags.items()
    }
    return replace(snapshot, flags=lifted)


def _classify(
    before: Snapshot, after: Snapshot, flags: tuple[str, ...], segments: tuple[str, ...]
) -> Classification:
    changed_flags = set(flags)
    changed_segments = set(segments)
    verdicts: dict[str, tuple[Direction, str]] = {}
    for key in sorted(changed_flags):
        old, new = before.flags.get(key), after.flags.get(key)
        verdicts[key] = _flag_verdict(old, new, changed_segments)
    if changed_segments:
        directions: dict[str, Direction] = {}
        unknown: set[str] = set()
        for key in changed_segments:
            found = _segment_direction(before.segments.get(key), after.segments.get(key))
            if found is None:
                unknown.add(key)
            else:
                directions[key] = found
        indirect = _nested_users(after, changed_segments) | _nested_users(before, changed_segments)
        for key, flag in after.flags.items():
            if key in changed_flags:
                continue
            old = before.flags.get(key)
            if old is None or not (_serving(flag) or _serving(old)):
                continue
            names = {n for e in _entries(flag) for n in e.segments}
            if not names & (changed_segments | indirect):
                continue
            if names & unknown:
                verdicts[key] = (
                    Direction.EXPANSION,
                    "the segment edit neither narrows nor widens it",
                )
                continue
            if (
                all(directions.get(n) is Direction.NONE for n in names & changed_segments)
                and not names & indirect
            ):
                continue
            verdicts[key] = _segment_effect(flag, flag_rank(flag), directions, indirect)
    _propagate_prerequisites(before, after, verdicts)
    relevant = {k: v for k, v in verdicts.items() if v[0] is not Direction.NONE}
    if not relevant:
        return Classification(Direction.NONE, (), ("nothing served changes",))
    worst = max(v[0].severity for v in relevant.values())
    direction = next(d for d in Direction if d.severity == worst)
    keys = tuple(sorted(relevant))
    reasons = tuple(f"{k}: {relevant[k][1]}" for k in keys if relevant[k][0] is direction)
    return Classification(direction, keys, reasons)


def _flag_verdict(
    old: Flag | None, new: Flag | None, changed_segments: set[str]
) -> tuple[Direction, str]:
    if old is None and new is None:
        return Direction.NONE, "absent on both sides"
    if new is None:
        return Direction.REDUCTION, "no longer served (the application's default applies)"
    if old is not None and new.client_visible and not old.client_visible:
        return Direction.EXPANSION, "made visible to client-side SDKs"
    if old is not None and old.kind is not new.kind:
        return Direction.EXPANSION, "changes the kind of the behavior"
    if (
        old is not None
        and new.kind not in (FlagKind.MODE, FlagKind.BOOLEAN)
        and (old.off_variation != new.off_variation or old.variations != new.variations)
    ):
        return Direction.EXPANSION, "changes which value is the fallback, or the values served"
    before_list = (
        [_Entry(("off",), _fixed(None), frozenset(), {})] if old is None else _entries(old)
    )
    after_list = _entries(new)
    if changed_segments and any(e.segments & changed_segments for e in after_list + before_list):
        return Direction.EXPANSION, "changed together with a segment it uses"
    return _compare_lists(before_list, flag_rank(old), after_list, flag_rank(new))


def _propagate_prerequisites(
    before: Snapshot, after: Snapshot, verdicts: dict[str, tuple[Direction, str]]
) -> None:
    """A flag's change reaches every flag that requires it."""
    pending = [k for k, v in verdicts.items() if v[0] is not Direction.NONE]
    while pending:
        key = pending.pop()
        direction = verdicts[key][0]
        required = after.flags.get(key) or before.flags.get(key)
        for other_key, other in after.flags.items():
            if other_key == key or not other.on:
                continue
            wanted = [p.variation for p in other.prerequisites if p.flag == key]
            if not wanted:
                continue
            current = verdicts.get(other_key, (Direction.NONE, ""))
            if current[0] is Direction.EXPANSION:
                continue
            verdict: tuple[Direction, str]
            own = flag_rank(other)
            floor = min(_min(e.outcome, own) for e in _entries(other))
            if (
                direction is Direction.EXPANSION
                or not _unique_top(required, wanted)
                or own(other.off_variation) > floor
            ):
                verdict = (Direction.EXPANSION, f"requires {key!r}, which this change moves")
            else:
                verdict = (Direction.REDUCTION, f"requires {key!r}, which serves less")
            if verdict[0].severity > current[0].severity:
                verdicts[other_key] = verdict
                pending.append(other_key)


def _unique_top(flag: Flag | None, wanted: list[str]) -> bool:
    """Each required variation is the only one ranked at or above its own rank."""
    if flag is None:
        return False
    rank = flag_rank(flag)
    for variation in wanted:
        level = rank(variation)
        if level >= _TOP or any(
            v.key != variation and rank(v.key) >= level for v in flag.variations
        ):
            return False
    return True
