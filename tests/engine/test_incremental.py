"""Applying a change reuses unchanged, self-contained flags — and is never wrong for it.

A change decoded with ``apply_changes`` and compiled against the previous compiled
snapshot must evaluate exactly like the same data decoded and compiled from scratch,
including flags that depend on a changed flag (prerequisites) or segment.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest

from lockgate.engine import SnapshotError, decode, encode
from lockgate.engine.codec import apply_changes
from lockgate.engine.compile import CompiledSnapshot
from lockgate.engine.validate import unchanged_parts, validate
from lockgate.sdk import LockgateClient

BOOL = [{"key": "on", "value": True}, {"key": "off", "value": False}]


def _flag(key: str, **config: Any) -> dict[str, Any]:
    return {
        "key": key, "version": 1, "kind": "boolean", "variations": BOOL, "on": True,
        "off_variation": "off", "default": {"variation": "off"}, **config,
    }  # fmt: skip


def _doc() -> dict[str, Any]:
    in_beta = {"id": "r", "clauses": [{"op": "segment_match", "values": ["beta"]}],
               "serve": {"variation": "on"}}  # fmt: skip
    return {
        "format": "lockgate.snapshot/1", "project": "p", "environment": "e", "version": 1,
        "flags": {
            "plain": _flag("plain", default={"variation": "on"}),
            "gate": _flag("gate", default={"variation": "on"}),
            "child": _flag("child", prerequisites=[{"flag": "gate", "variation": "on"}],
                           default={"variation": "on"}),
            "beta-only": _flag("beta-only", rules=[in_beta]),
        },
        "segments": {"beta": {"key": "beta", "version": 1, "included": ["u1"]}},
    }  # fmt: skip


CONTEXTS = [{"key": "u1"}, {"key": "u2"}]


def _results(compiled: CompiledSnapshot) -> dict[tuple[str, str], Any]:
    return {
        (flag, ctx["key"]): compiled.evaluate(flag, ctx, "default").to_dict()
        for flag in compiled.flags
        for ctx in CONTEXTS
    }


def _both(changes_flags: dict[str, Any], changes_segments: dict[str, Any]) -> tuple[Any, Any]:
    first = decode(_doc())
    previous = CompiledSnapshot(first)
    changed = apply_changes(first, 2, changes_flags, changes_segments)
    incremental = CompiledSnapshot(changed, previous)
    patched = _doc()
    patched["version"] = 2
    for kind, changes in (("flags", changes_flags), ("segments", changes_segments)):
        for key, raw in changes.items():
            patched[kind].pop(key, None)
            if raw is not None:
                patched[kind][key] = raw
    scratch = CompiledSnapshot(decode(patched))
    return incremental, scratch


def test_unchanged_objects_are_shared_and_changed_ones_decoded() -> None:
    first = decode(_doc())
    changed = apply_changes(first, 2, {"plain": _flag("plain")}, {})
    assert changed.version == 2
    assert changed.flags["gate"] is first.flags["gate"]
    assert changed.flags["plain"] is not first.flags["plain"]
    assert encode(changed)["flags"]["plain"]["default"] == {"variation": "off"}


def test_self_contained_unchanged_flags_reuse_their_compiled_form() -> None:
    first = decode(_doc())
    previous = CompiledSnapshot(first)
    compiled = CompiledSnapshot(apply_changes(first, 2, {"plain": _flag("plain")}, {}), previous)
    assert compiled.flags["gate"] is previous.flags["gate"]
    assert compiled.flags["plain"] is not previous.flags["plain"]
    # Dependents are always recompiled: what they depend on may have changed.
    assert compiled.flags["child"] is not previous.flags["child"]
    assert compiled.flags["beta-only"] is not previous.flags["beta-only"]


def test_a_changed_prerequisite_reaches_its_dependents() -> None:
    incremental, scratch = _both({"gate": _flag("gate")}, {})
    assert _results(incremental) == _results(scratch)
    assert incremental.evaluate("child", {"key": "u1"}).reason == "PREREQUISITE_FAILED"


def test_a_changed_segment_reaches_the_flags_using_it() -> None:
    beta = {"key": "beta", "version": 2, "included": ["u2"]}
    incremental, scratch = _both({}, {"beta": beta})
    assert _results(incremental) == _results(scratch)
    assert incremental.evaluate("beta-only", {"key": "u2"}).value is True
    assert incremental.evaluate("beta-only", {"key": "u1"}).value is False


def test_removing_and_breaking_flags() -> None:
    incremental, scratch = _both({"plain": None, "gate": {"key": "gate"}}, {})
    assert "plain" not in incremental.flags
    assert incremental.evaluate("gate", {"key": "u1"}).error_code == "MALFORMED_FLAG"
    assert incremental.evaluate("child", {"key": "u1"}).error_code == "MALFORMED_FLAG"
    assert _results(incremental) == _results(scratch)


def test_the_client_refuses_a_change_that_breaks_a_dependent() -> None:
    client = LockgateClient(_doc())
    broken = apply_changes(client.snapshot, 2, {"gate": None}, {})
    with pytest.raises(SnapshotError, match=r"prerequisites\[0\]\.flag"):
        client.update(broken)
    assert client.snapshot.version == 1


def test_a_change_closing_a_prerequisite_cycle_is_refused() -> None:
    # "child" (unchanged) needs "gate"; making "gate" need "child" closes a cycle that only
    # the changed flag can have introduced: the incremental check must still see it.
    client = LockgateClient(_doc())
    looped = _flag("gate", prerequisites=[{"flag": "child", "variation": "on"}])
    with pytest.raises(SnapshotError, match="prerequisite cycle"):
        client.update(apply_changes(client.snapshot, 2, {"gate": looped}, {}))
    assert client.snapshot.version == 1


def test_a_change_closing_a_segment_cycle_is_refused() -> None:
    client = LockgateClient(_doc())
    refers = {"op": "segment_match", "values": ["beta"]}
    loop = {"key": "loop", "version": 1, "rules": [{"id": "r", "clauses": [refers]}]}
    client.update(apply_changes(client.snapshot, 2, {}, {"loop": loop}))
    back = {"op": "segment_match", "values": ["loop"]}
    beta = {"key": "beta", "version": 2, "rules": [{"id": "r", "clauses": [back]}]}
    with pytest.raises(SnapshotError, match="cycle"):
        client.update(apply_changes(client.snapshot, 3, {}, {"beta": beta}))
    assert client.snapshot.version == 2


def test_changes_without_references_skip_the_cycle_check_and_stay_correct() -> None:
    first = decode(_doc())
    changed = apply_changes(first, 2, {"plain": _flag("plain")}, {})
    known = unchanged_parts(changed, first)
    assert known.acyclic
    assert "gate" in known.flags
    assert "plain" not in known.flags
    assert "child" not in known.flags  # depends on another flag: always checked again
    assert validate(changed, known) == validate(changed) == []
    with_prerequisite = _flag("plain", prerequisites=[{"flag": "gate", "variation": "on"}])
    assert not unchanged_parts(
        apply_changes(first, 2, {"plain": with_prerequisite}, {}), first
    ).acyclic


def test_a_validated_compile_matches_a_checked_one() -> None:
    first = decode(_doc())
    previous = CompiledSnapshot(first)
    changed = apply_changes(first, 2, {"gate": _flag("gate")}, {})
    known = unchanged_parts(changed, first)
    assert validate(changed, known) == []
    trusted = CompiledSnapshot(changed, previous, validated=known)
    checked = CompiledSnapshot(changed, previous)
    assert trusted.malformed == checked.malformed == frozenset()
    assert _results(trusted) == _results(checked)


def test_replaced_compiled_flags_are_freed_without_the_cycle_collector() -> None:
    # Generated evaluators hold no reference back to themselves, so an update's old
    # compiled flags are freed at once instead of piling up for a full collection.
    client = LockgateClient(_doc())
    gc.collect()
    gc.disable()
    try:
        for version in range(2, 40):
            value = "on" if version % 2 else "off"
            change = {"plain": _flag("plain", version=version, default={"variation": value})}
            client.update(apply_changes(client.snapshot, version, change, {}))
        assert gc.collect() == 0
    finally:
        gc.enable()
