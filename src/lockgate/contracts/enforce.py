"""The contract after apply: checks every later configuration write must pass.

The rules are the stored form of :meth:`Contract.rules` (plain JSON kept with the
behavior). Each check answers ``None`` or a message naming the contract line it enforces.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from lockgate.contracts.model import RISK_LEVELS
from lockgate.engine.modes import Mode

__all__ = ["check_config", "loosening", "served_variations"]

_INACTIVE = {Mode.OFF.value, Mode.FALLBACK.value}


def _serve_variations(serve: Any) -> Iterator[str]:
    if not isinstance(serve, Mapping):
        return
    if "variation" in serve:
        yield str(serve["variation"])
    for part in serve.get("split") or []:
        if isinstance(part, Mapping) and part.get("weight", 1) and "variation" in part:
            yield str(part["variation"])


def served_variations(config: Mapping[str, Any]) -> set[str]:
    """Every variation a configuration can serve (the off variation included)."""
    found = set()
    if config.get("off_variation") is not None:
        found.add(str(config["off_variation"]))
    if not config.get("on", True):
        return found
    for target in config.get("targets") or []:
        if isinstance(target, Mapping) and target.get("values"):
            found.add(str(target.get("variation")))
    for rule in config.get("rules") or []:
        if isinstance(rule, Mapping):
            found.update(_serve_variations(rule.get("serve")))
    found.update(_serve_variations(config.get("default")))
    return found


def _line(rules: Mapping[str, Any], name: str) -> str:
    line = (rules.get("lines") or {}).get(name)
    return f"contract line {line}: {name}" if line else f"contract: {name}"


def _active(variations: set[str]) -> set[str]:
    return {v for v in variations if v not in _INACTIVE}


def _wider_than_first_audience(rules: Mapping[str, Any], config: Mapping[str, Any]) -> str | None:
    """Where a configuration serves an active mode outside the first audience."""
    audience = list(rules.get("first_audience") or [])
    if _active(set(_serve_variations(config.get("default")))):
        return "its default serves an active mode to everyone"
    for target in config.get("targets") or []:
        active = isinstance(target, Mapping) and target.get("values")
        if active and _active({str(target.get("variation"))}):
            return "a target serves an active mode to individual contexts"
    for rule in config.get("rules") or []:
        if not isinstance(rule, Mapping):
            continue
        if not _active(set(_serve_variations(rule.get("serve")))):
            continue
        clauses = list(rule.get("clauses") or [])
        if not audience or clauses[: len(audience)] != audience:
            return f"rule {rule.get('id')!r} serves an active mode outside the first audience"
    return None


def check_config(
    rules: Mapping[str, Any] | None,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> str | None:
    """Why ``after`` breaks the contract (``None`` when it holds)."""
    if not rules:
        return None
    allowed = set(rules.get("allowed_modes") or [])
    outside = sorted(served_variations(after) - allowed) if allowed else []
    if outside:
        return (
            f"serves {', '.join(repr(v) for v in outside)}, outside the allowed modes "
            f"({_line(rules, 'allowed_modes')})"
        )
    if rules.get("first_audience") is None:
        return None
    was_dark = not _active(served_variations(before)) or not before.get("on", True)
    now_active = bool(after.get("on", True)) and bool(_active(served_variations(after)))
    if was_dark and now_active:
        wider = _wider_than_first_audience(rules, after)
        if wider is not None:
            return (
                f"the first expansion of an off behavior must go to its first audience; "
                f"{wider} ({_line(rules, 'first_audience')})"
            )
    return None


def _rank(mode: Any) -> int:
    try:
        return Mode(mode).rank
    except ValueError:
        return 0


def loosening(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> tuple[str, ...]:
    """How a new contract's rules allow more than the stored ones (empty: nothing more).

    A first contract only adds restrictions. Later, more allowed modes, a changed or removed
    first audience, a lower risk level, or a more active default state or fallback widen
    what later writes may do: an expansion of authority, decided by the posture.
    """
    if not before:
        return ()
    found = []
    added = [
        m for m in after.get("allowed_modes") or [] if m not in (before.get("allowed_modes") or [])
    ]
    if added:
        found.append(f"allowed_modes adds {', '.join(added)}")
    if before.get("first_audience") and after.get("first_audience") != before["first_audience"]:
        found.append("first_audience changed or removed")
    levels = list(RISK_LEVELS)
    old, new = before.get("risk_level"), after.get("risk_level")
    if old in levels and new in levels and levels.index(new) < levels.index(old):
        found.append(f"risk_level lowered from {old} to {new}")
    for name in ("default_state", "fallback"):
        if _rank(after.get(name)) > _rank(before.get(name)):
            found.append(f"{name} raised from {before.get(name)} to {after.get(name)}")
    return tuple(found)
