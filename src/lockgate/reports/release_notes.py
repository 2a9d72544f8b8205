"""Release notes: what changed, for whom, why, on which evidence, with whose approval.

One note per audit entry that expanded or reduced what a behavior serves (a configuration
change, a revert, a kill or restore, an exclusion or its lift, an applied contract that
changed the configuration) or that decided about its clean-up. Everything in a note comes
from the audit entry itself: its ``changes``, its ``after`` state, its ``reason``, the
policy decision and evidence recorded with it, and the change request it applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["NOTE_ACTIONS", "describe_serving", "exposure_share", "notes_for", "release_note"]

NOTE_ACTIONS = frozenset(
    {
        "flag:configured",
        "flag:reverted",
        "flag:killed",
        "flag:restored",
        "flag:excluded",
        "flag:exclusion_lifted",
        "flag:archived",
        "flag:cleanup_due",
        "incident:started",
        "incident:ended",
    }
)
"""Audit actions that get a release note (an incident's, in the report of each behavior it
covers)."""

_CLEANUP_ACTIONS = frozenset({"flag:archived", "flag:cleanup_due"})
_NOT_SERVED = frozenset({"off", "fallback"})


def _serve_text(serve: Mapping[str, Any] | None) -> str:
    if not serve:
        return "the caller's default"
    if "variation" in serve:
        return str(serve["variation"])
    parts = serve.get("split") or []
    total = sum(int(p.get("weight", 0)) for p in parts) or 1
    shares = ", ".join(
        f"{p.get('variation')} {100 * int(p.get('weight', 0)) / total:g} %" for p in parts
    )
    return f"a split ({shares})"


def describe_serving(config: Mapping[str, Any] | None) -> str:
    """Who gets what under ``config`` (an environment's configuration), in one line."""
    if not config:
        return "not configured"
    off = str(config.get("off_variation") or "off")
    if config.get("killed"):
        return f"killed: everyone gets the fallback ({off})"
    if not config.get("on"):
        return f"off: everyone gets {off}"
    audiences: list[str] = []
    for target in config.get("targets") or []:
        values = target.get("values") or []
        audiences.append(f"{len(values)} targeted context(s) get {target.get('variation')}")
    for rule in config.get("rules") or []:
        audiences.append(f"rule {rule.get('id')!s} gets {_serve_text(rule.get('serve'))}")
    exclusions = config.get("exclusions") or []
    if exclusions:
        audiences.insert(0, f"{len(exclusions)} excluded audience(s) get {off}")
    audiences.append(f"everyone else gets {_serve_text(config.get('default'))}")
    return "; ".join(audiences)


def exposure_share(config: Mapping[str, Any] | None) -> float:
    """The share (0 to 1) of the traffic no target or rule matched that is served a
    variation other than the off state or the fallback."""
    if not config or config.get("killed") or not config.get("on"):
        return 0.0
    hidden = _NOT_SERVED | {str(config.get("off_variation") or "off")}
    serve = config.get("default") or {}
    if "variation" in serve:
        return 0.0 if serve["variation"] in hidden else 1.0
    parts = serve.get("split") or []
    total = sum(int(p.get("weight", 0)) for p in parts)
    if total <= 0:
        return 0.0
    shown = sum(int(p.get("weight", 0)) for p in parts if p.get("variation") not in hidden)
    return shown / total


def _what(entry: Mapping[str, Any]) -> str:
    changes = [c for c in entry.get("changes") or [] if c.get("path") != "version"]
    if not changes:
        return "no field changed"
    return "; ".join(f"{c.get('path')}: {c.get('old')!r} → {c.get('new')!r}" for c in changes)


def _direction(entry: Mapping[str, Any]) -> str:
    if entry.get("action") in _CLEANUP_ACTIONS:
        return "cleanup"
    evidence = entry.get("evidence") or {}
    policy = evidence.get("policy") or {}
    direction = policy.get("direction") or evidence.get("direction")
    return str(direction) if direction else "neutral"


def _approval(entry: Mapping[str, Any]) -> dict[str, Any]:
    evidence = entry.get("evidence") or {}
    policy = evidence.get("policy") or {}
    request = evidence.get("change_request")
    if request:
        return {
            "kind": "change_request",
            "change_request": request.get("id"),
            "author": request.get("author"),
            "approved_by": list(request.get("approved_by") or []),
            "rule": policy.get("rule"),
        }
    return {
        "kind": "direct",
        "change_request": None,
        "author": entry.get("actor_name"),
        "approved_by": [],
        "rule": policy.get("rule"),
    }


def _evidence(entry: Mapping[str, Any]) -> dict[str, Any]:
    evidence = dict(entry.get("evidence") or {})
    policy = evidence.pop("policy", None) or {}
    evidence.pop("change_request", None)
    for copied in ("direction", "behaviors", "reasons"):
        evidence.pop(copied, None)
    return {"policy_reasons": list(policy.get("reasons") or []), "other": evidence}


def _for_whom(entry: Mapping[str, Any]) -> str:
    after = entry.get("after") or {}
    if str(entry.get("action", "")).startswith("incident:"):
        before = entry.get("before") or {}
        keys = after.get("covered") or after.get("restored") or before.get("covered") or []
        covered = ", ".join(keys) or "no behavior"
        if entry.get("action") == "incident:started":
            return f"in incident mode: {covered} serve their fallback; expansions are refused"
        return f"incident over: {covered} serve their own configuration again"
    return describe_serving(after)


def release_note(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The release note of one audit entry (in the API's JSON form)."""
    approval = _approval(entry)
    for_whom = _for_whom(entry)
    who = (
        f"approved by {', '.join(approval['approved_by'])} (change request "
        f"{approval['change_request']})"
        if approval["kind"] == "change_request"
        else f"applied directly by {approval['author']}"
        + (f" under {approval['rule']}" if approval["rule"] else "")
    )
    return {
        "seq": entry.get("seq"),
        "ts": entry.get("ts"),
        "action": entry.get("action"),
        "environment": entry.get("environment"),
        "direction": _direction(entry),
        "actor": entry.get("actor_name"),
        "what": _what(entry),
        "for_whom": for_whom,
        "why": entry.get("reason") or "",
        "evidence": _evidence(entry),
        "approval": approval,
        "summary": f"{entry.get('action')} in {entry.get('environment') or 'every environment'}"
        f" ({_direction(entry)}): {for_whom}; {who}",
    }


def notes_for(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Release notes of the entries that get one, in the order given."""
    return [release_note(e) for e in entries if e.get("action") in NOTE_ACTIONS]
