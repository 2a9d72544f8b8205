"""The change classifier: named cases, and soundness checked with the engine itself."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockgate.engine import Mode, compile_snapshot, decode, evaluate
from lockgate.policy.classify import Direction, classify_snapshots
from tests.engine.factories import clause, snapshot_doc

MODES = [m.value for m in Mode]
JSON = dict[str, Any]


def mode_flag(**config: Any) -> JSON:
    flag: JSON = {
        "key": "agent",
        "version": 1,
        "kind": "mode",
        "variations": [{"key": m, "value": m} for m in MODES],
        "on": True,
        "off_variation": "off",
        "targets": [],
        "rules": [],
        "default": {"variation": "off"},
        "prerequisites": [],
    }
    flag.update(config)
    return flag


def segment(**fields: Any) -> JSON:
    seg: JSON = {"key": "beta", "version": 1, "included": [], "excluded": [], "rules": []}
    seg.update(fields)
    return seg


def classify(
    before: JSON, after: JSON, *, flags: tuple[str, ...] = ("agent",), segs: tuple[str, ...] = ()
) -> Direction:
    b = decode(before)
    a = decode(after)
    return classify_snapshots(b, a, flags=flags, segments=segs).direction


def one(flag_before: JSON, flag_after: JSON) -> Direction:
    return classify(snapshot_doc({"agent": flag_before}), snapshot_doc({"agent": flag_after}))


def in_plan(*plans: str) -> JSON:
    return clause("plan", "in", *plans)


def test_turning_off_is_a_reduction() -> None:
    before = mode_flag(default={"variation": "full"})
    assert one(before, {**before, "on": False}) is Direction.REDUCTION


def test_turning_on_is_an_expansion() -> None:
    before = mode_flag(on=False, default={"variation": "observe"})
    assert one(before, {**before, "on": True}) is Direction.EXPANSION


def test_turning_off_to_a_higher_off_variation_is_an_expansion() -> None:
    before = mode_flag(default={"variation": "observe"})
    after = {**before, "on": False, "off_variation": "full"}
    assert one(before, after) is Direction.EXPANSION


def test_a_lower_mode_is_a_reduction_and_a_higher_one_an_expansion() -> None:
    before = mode_flag(default={"variation": "draft_only"})
    assert one(before, mode_flag(default={"variation": "observe"})) is Direction.REDUCTION
    assert one(before, mode_flag(default={"variation": "full"})) is Direction.EXPANSION


def test_lower_percentage_is_a_reduction_and_higher_an_expansion() -> None:
    def at(percent: int) -> JSON:
        weight = percent * 1000
        split = [
            {"variation": "full", "weight": weight},
            {"variation": "off", "weight": 100_000 - weight},
        ]
        return mode_flag(default={"split": split})

    assert one(at(20), at(5)) is Direction.REDUCTION
    assert one(at(5), at(20)) is Direction.EXPANSION
    assert one(at(20), at(20)) is Direction.NONE


def test_collapsing_a_split_to_a_served_mode_is_an_expansion() -> None:
    # Contexts without the bucketing key got an error (the application's default) before.
    split = [{"variation": "full", "weight": 100_000}]
    before = mode_flag(default={"split": split})
    assert one(before, mode_flag(default={"variation": "full"})) is Direction.EXPANSION
    assert one(before, mode_flag(default={"variation": "off"})) is Direction.REDUCTION


def test_removing_an_audience_is_a_reduction() -> None:
    rule = {"id": "pro", "clauses": [in_plan("pro")], "serve": {"variation": "full"}}
    before = mode_flag(rules=[rule], default={"variation": "observe"})
    assert one(before, mode_flag(default={"variation": "observe"})) is Direction.REDUCTION


def test_removing_an_exclusion_is_an_expansion() -> None:
    rule = {"id": "free", "clauses": [in_plan("free")], "serve": {"variation": "off"}}
    before = mode_flag(rules=[rule], default={"variation": "full"})
    assert one(before, mode_flag(default={"variation": "full"})) is Direction.EXPANSION


def test_a_new_rule_or_target_serving_more_is_an_expansion_and_one_serving_less_a_reduction() -> (
    None
):
    before = mode_flag(default={"variation": "observe"})
    wider = {"id": "r", "clauses": [in_plan("pro")], "serve": {"variation": "full"}}
    narrower = {"id": "r", "clauses": [in_plan("pro")], "serve": {"variation": "off"}}
    assert (
        one(before, mode_flag(rules=[wider], default={"variation": "observe"}))
        is Direction.EXPANSION
    )
    assert (
        one(before, mode_flag(rules=[narrower], default={"variation": "observe"}))
        is Direction.REDUCTION
    )
    target = [{"variation": "full", "values": ["user-1"]}]
    assert (
        one(before, mode_flag(targets=target, default={"variation": "observe"}))
        is Direction.EXPANSION
    )


def test_a_kill_and_an_incident_are_reductions_and_lifting_them_expansions() -> None:
    live = mode_flag(default={"variation": "full"})
    for mark in ({"killed": True}, {"incidents": ["3"]}):
        assert one(live, {**live, **mark}) is Direction.REDUCTION
        assert one({**live, **mark}, live) is Direction.EXPANSION


def test_an_expansion_made_under_a_kill_is_still_an_expansion() -> None:
    killed = mode_flag(default={"variation": "observe"}, killed=True)
    assert one(killed, {**killed, "default": {"variation": "full"}}) is Direction.EXPANSION
    assert one(killed, {**killed, "default": {"variation": "fallback"}}) is Direction.REDUCTION


def test_an_exclusion_is_a_reduction_and_lifting_it_an_expansion() -> None:
    live = mode_flag(default={"variation": "full"})
    excluded = {**live, "exclusions": [{"id": "eu", "clauses": [clause("country", "in", "de")]}]}
    assert one(live, excluded) is Direction.REDUCTION
    assert one(excluded, live) is Direction.EXPANSION


def test_reordering_rules_is_an_expansion() -> None:
    r1 = {"id": "a", "clauses": [in_plan("pro")], "serve": {"variation": "off"}}
    r2 = {"id": "b", "clauses": [clause("country", "in", "de")], "serve": {"variation": "full"}}
    before = mode_flag(rules=[r1, r2])
    assert one(before, mode_flag(rules=[r2, r1])) is Direction.EXPANSION


def test_a_wider_segment_widens_every_behavior_using_it() -> None:
    rule = {
        "id": "beta",
        "clauses": [clause(None, "segment_match", "beta")],
        "serve": {"variation": "full"},
    }
    flags = {"agent": mode_flag(rules=[rule])}
    before = snapshot_doc(flags, {"beta": segment(included=["u1"])})
    wider = snapshot_doc(flags, {"beta": segment(included=["u1", "u2"])})
    narrower = snapshot_doc(flags, {"beta": segment(included=[])})
    assert classify(before, wider, flags=(), segs=("beta",)) is Direction.EXPANSION
    assert classify(before, narrower, flags=(), segs=("beta",)) is Direction.REDUCTION


def test_narrowing_an_exclusion_segment_is_an_expansion() -> None:
    rule = {
        "id": "blocked",
        "clauses": [clause(None, "segment_match", "beta")],
        "serve": {"variation": "off"},
    }
    flags = {"agent": mode_flag(rules=[rule], default={"variation": "full"})}
    before = snapshot_doc(flags, {"beta": segment(included=["u1"])})
    after = snapshot_doc(flags, {"beta": segment(included=[])})
    assert classify(before, after, flags=(), segs=("beta",)) is Direction.EXPANSION


def test_a_segment_no_behavior_uses_changes_nothing() -> None:
    before = snapshot_doc({"agent": mode_flag()}, {"beta": segment(included=["u1"])})
    after = snapshot_doc({"agent": mode_flag()}, {"beta": segment(included=["u1", "u2"])})
    assert classify(before, after, flags=(), segs=("beta",)) is Direction.NONE


def test_archiving_is_a_reduction_and_restoring_an_expansion() -> None:
    live = snapshot_doc({"agent": mode_flag(default={"variation": "full"})})
    gone = snapshot_doc({})
    assert classify(live, gone) is Direction.REDUCTION
    assert classify(gone, live) is Direction.EXPANSION


def test_a_reduced_prerequisite_expands_a_dependent_that_requires_a_low_variation() -> None:
    dependent = mode_flag(
        key="dep",
        default={"variation": "full"},
        prerequisites=[{"flag": "agent", "variation": "off"}],
    )
    before = snapshot_doc({"agent": mode_flag(default={"variation": "observe"}), "dep": dependent})
    after = snapshot_doc({"agent": mode_flag(default={"variation": "off"}), "dep": dependent})
    assert classify(before, after) is Direction.EXPANSION


# --- soundness: a reduction never serves anyone more, checked by evaluating ------------------

PLANS = ["free", "pro"]
COUNTRIES = ["de", "us"]
KEYS = [f"u{i}" for i in range(12)]
CONTEXTS: list[JSON] = [
    {"key": k, "plan": PLANS[i % 2], "country": COUNTRIES[(i // 2) % 2]} for i, k in enumerate(KEYS)
] + [{"plan": "pro", "country": "de"}, {"plan": "free"}]

variations = st.sampled_from(MODES)


@st.composite
def serves(draw: st.DrawFn) -> JSON:
    if draw(st.booleans()):
        return {"variation": draw(variations)}
    first = draw(st.integers(0, 100_000))
    return {
        "split": [
            {"variation": draw(variations), "weight": first},
            {"variation": draw(variations), "weight": 100_000 - first},
        ]
    }


@st.composite
def rules(draw: st.DrawFn) -> JSON:
    kind = draw(st.sampled_from(["plan", "country", "segment", "not_segment"]))
    if kind == "plan":
        c = in_plan(draw(st.sampled_from(PLANS)))
    elif kind == "country":
        c = clause("country", "in", draw(st.sampled_from(COUNTRIES)))
    else:
        c = clause(None, "segment_match", "beta", negate=kind == "not_segment")
    return {
        "id": draw(st.sampled_from(["r1", "r2", "r3", "r4"])),
        "clauses": [c],
        "serve": draw(serves()),
    }


@st.composite
def configs(draw: st.DrawFn) -> JSON:
    found = draw(st.lists(rules(), max_size=3))
    unique = list({r["id"]: r for r in found}.values())
    targets = [
        {
            "variation": draw(variations),
            "values": draw(st.lists(st.sampled_from(KEYS), max_size=3, unique=True)),
        }
        for _ in range(draw(st.integers(0, 2)))
    ]
    return mode_flag(
        on=draw(st.booleans()),
        off_variation=draw(st.sampled_from(["off", "off", "fallback", "observe"])),
        targets=[t for t in targets if t["values"]],
        rules=unique,
        default=draw(serves()),
        prerequisites=[{"flag": "gate", "variation": "on"}] if draw(st.booleans()) else [],
        killed=draw(st.sampled_from([False, False, False, True])),
        incidents=draw(st.sampled_from([[], [], [], ["7"]])),
        exclusions=draw(st.lists(exclusions(), max_size=2, unique_by=lambda x: x["id"])),
    )


@st.composite
def exclusions(draw: st.DrawFn) -> JSON:
    """A targeted rollback: an audience that gets the off variation before anything."""
    kind = draw(st.sampled_from(["plan", "country", "segment"]))
    if kind == "plan":
        c = in_plan(draw(st.sampled_from(PLANS)))
    elif kind == "country":
        c = clause("country", "in", draw(st.sampled_from(COUNTRIES)))
    else:
        c = {"op": "segment_match", "values": ["beta"]}
    return {"id": draw(st.sampled_from(["x1", "x2", "x3"])), "clauses": [c]}


def mutate(draw: st.DrawFn, flag: JSON) -> JSON:
    flag = copy.deepcopy(flag)
    op = draw(
        st.sampled_from(
            [
                "on",
                "off_var",
                "default",
                "rule_serve",
                "drop_rule",
                "add_rule",
                "drop_target",
                "prereq",
                "swap",
                "kill",
                "incident",
                "add_exclusion",
                "drop_exclusion",
            ]
        )
    )
    if op == "on":
        flag["on"] = not flag["on"]
    elif op == "off_var":
        flag["off_variation"] = draw(variations)
    elif op == "default":
        flag["default"] = draw(serves())
    elif op == "rule_serve" and flag["rules"]:
        i = draw(st.integers(0, len(flag["rules"]) - 1))
        flag["rules"][i]["serve"] = draw(serves())
    elif op == "drop_rule" and flag["rules"]:
        flag["rules"].pop(draw(st.integers(0, len(flag["rules"]) - 1)))
    elif op == "add_rule":
        new = draw(rules())
        if new["id"] not in {r["id"] for r in flag["rules"]}:
            flag["rules"].insert(draw(st.integers(0, len(flag["rules"]))), new)
    elif op == "drop_target" and flag["targets"]:
        flag["targets"].pop(0)
    elif op == "prereq":
        flag["prerequisites"] = (
            [] if flag["prerequisites"] else [{"flag": "gate", "variation": "on"}]
        )
    elif op == "swap" and len(flag["rules"]) > 1:
        flag["rules"][0], flag["rules"][1] = flag["rules"][1], flag["rules"][0]
    else:
        _reverse(draw, flag, op)
    return flag


def _reverse(draw: st.DrawFn, flag: JSON, op: str) -> None:
    """The reversal mutations: kill, incident, exclusions."""
    if op == "kill":
        flag["killed"] = not flag.get("killed", False)
    elif op == "incident":
        flag["incidents"] = [] if flag.get("incidents") else ["7"]
    elif op == "add_exclusion":
        new = draw(exclusions())
        if new["id"] not in {x["id"] for x in flag.get("exclusions", [])}:
            flag["exclusions"] = [*flag.get("exclusions", []), new]
    elif op == "drop_exclusion" and flag.get("exclusions"):
        flag["exclusions"] = flag["exclusions"][1:]


@st.composite
def segments_(draw: st.DrawFn) -> JSON:
    return segment(
        included=draw(st.lists(st.sampled_from(KEYS), max_size=4, unique=True)),
        excluded=draw(st.lists(st.sampled_from(KEYS), max_size=2, unique=True)),
        rules=[{"id": "s1", "clauses": [clause("country", "in", "us")]}]
        if draw(st.booleans())
        else [],
    )


def gate(on: bool) -> JSON:
    return {
        "key": "gate", "version": 1, "kind": "boolean", "on": on, "off_variation": "off",
        "variations": [{"key": "on", "value": True}, {"key": "off", "value": False}],
        "default": {"variation": "on"},
    }  # fmt: skip


def served_rank(snapshot: Any, context: JSON) -> int:
    detail = evaluate(snapshot, "agent", context)
    mode = Mode.parse(detail.value)
    return 0 if detail.variation is None or mode is None else mode.rank


@st.composite
def changes(draw: st.DrawFn) -> tuple[JSON, JSON, tuple[str, ...], tuple[str, ...]]:
    flag = draw(configs())
    seg = draw(segments_())
    gate_on = draw(st.booleans())
    before = snapshot_doc({"agent": flag, "gate": gate(gate_on)}, {"beta": seg})
    if draw(st.integers(0, 3)) == 0:
        new_seg = draw(segments_())
        after = snapshot_doc({"agent": flag, "gate": gate(gate_on)}, {"beta": new_seg})
        return before, after, (), ("beta",)
    new = flag
    for _ in range(draw(st.integers(1, 3))):
        new = mutate(draw, new)
    after = snapshot_doc({"agent": new, "gate": gate(gate_on)}, {"beta": seg})
    return before, after, ("agent",), ()


@settings(
    max_examples=600, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(changes())
def test_a_change_classified_as_a_reduction_serves_nobody_more(
    change: tuple[JSON, JSON, tuple[str, ...], tuple[str, ...]],
) -> None:
    before_doc, after_doc, flags, segs = change
    before, after = decode(before_doc), decode(after_doc)
    verdict = classify_snapshots(before, after, flags=flags, segments=segs)
    if verdict.direction is Direction.EXPANSION:
        return
    old, new = compile_snapshot(before), compile_snapshot(after)
    # What lifting every kill and incident would serve must not grow either: an edit made
    # under a kill or an incident is not a way around the policy.
    lifted_old, lifted_new = (compile_snapshot(decode(_lifted(d))) for d in (before_doc, after_doc))
    for context in CONTEXTS:
        assert served_rank(new, context) <= served_rank(old, context), (verdict, context)
        assert served_rank(lifted_new, context) <= served_rank(lifted_old, context), (
            verdict,
            context,
        )
        if verdict.direction is Direction.NONE:
            assert served_rank(new, context) == served_rank(old, context), (verdict, context)


def _lifted(doc: JSON) -> JSON:
    """The snapshot document with every kill and incident lifted."""
    flags = {k: {**f, "killed": False, "incidents": []} for k, f in doc["flags"].items()}
    return {**doc, "flags": flags}


@settings(max_examples=300, deadline=None, derandomize=True)
@given(configs())
def test_the_classifier_finds_reductions_not_only_expansions(flag: JSON) -> None:
    # Turning a behavior off to the "off" mode is always recognised as a reduction.
    before = snapshot_doc({"agent": flag, "gate": gate(True)}, {"beta": segment()})
    off = {**flag, "on": False, "off_variation": "off"}
    after = snapshot_doc({"agent": off, "gate": gate(True)}, {"beta": segment()})
    verdict = classify(before, after)
    assert verdict in (Direction.REDUCTION, Direction.NONE)
