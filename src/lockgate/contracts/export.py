"""A contract written from a behavior's live state (``lockgate contract export``).

The output is YAML whose scalars are JSON strings (YAML reads JSON scalars as written), so
no YAML library is needed and every value round-trips.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from lockgate.contracts.desired import FIRST_AUDIENCE_RULE
from lockgate.contracts.enforce import served_variations
from lockgate.contracts.model import MODES, ROOT

__all__ = ["export_contract"]


def _q(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _environment(config: Mapping[str, Any]) -> tuple[str, str | None]:
    if not config.get("on"):
        return "off", None
    rules = config.get("rules") or []
    first = next((r for r in rules if r.get("id") == FIRST_AUDIENCE_RULE), None)
    if first is not None:
        return "first_audience", (first.get("serve") or {}).get("variation")
    default = config.get("default") or {}
    if "variation" in default:
        return "everyone", default["variation"]
    return "custom", None


def _tools(tools: Sequence[Mapping[str, Any]]) -> list[str]:
    """The ``tools:`` block: each tool as the registry holds it now (denials are not a
    contract's: people set them)."""
    if not tools:
        return []
    lines = ["  tools:"]
    for tool in tools:
        lines += [f"    - key: {_q(tool['key'])}", f"      risk: {_q(tool['risk'])}"]
        if tool.get("description"):
            lines.append(f"      description: {_q(tool['description'])}")
        budget = tool.get("budget")
        if budget:
            fields = ", ".join(f"{k}: {_q(budget[k])}" for k in ("calls", "window", "per"))
            lines.append(f"      budget: {{{fields}}}")
    return lines


def export_contract(
    flag: Mapping[str, Any],
    rules: Mapping[str, Any] | None,
    tools: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The contract text for ``flag`` (the API's flag view), its stored contract rules and
    the registered ``tools`` its contract declares (registry views, in contract order)."""
    rules = rules or {}
    envs: Mapping[str, Mapping[str, Any]] = flag.get("environments") or {}
    variations = [str(v.get("key")) for v in flag.get("variations") or []]
    if rules.get("allowed_modes"):
        allowed = list(rules["allowed_modes"])
    elif flag.get("kind") == "mode":
        served: set[str] = set()
        for config in envs.values():
            served |= served_variations(config)
        allowed = [m for m in MODES if m in served or m in ("off", "fallback")]
    else:
        allowed = variations
    lines = [
        f"{ROOT}:",
        f"  behavior: {_q(flag.get('name') or flag.get('key'))}",
        f"  key: {_q(flag.get('key'))}",
    ]
    if flag.get("behavior_kind"):
        lines.append(f"  kind: {_q(flag['behavior_kind'])}")
    lines += [
        f"  owner: {_q(flag.get('owner') or '')}",
        f"  risk_level: {_q(flag.get('risk_tier') or 'low')}",
        f"  default_state: {_q(rules.get('default_state', 'off'))}",
    ]
    audience = rules.get("first_audience")
    if audience:
        lines.append("  first_audience:")
        segments = [
            c["values"][0]
            for c in audience
            if c.get("op") == "segment_match" and len(c.get("values") or []) == 1
        ]
        if len(audience) == 1 and segments:
            lines.append(f"    segment: {_q(segments[0])}")
        else:
            lines.append(f"    clauses: {_q(list(audience))}")
    lines.append("  allowed_modes:")
    lines += [f"    - {_q(m)}" for m in allowed]
    fallback = rules.get("fallback")
    if fallback:
        lines += ["  rollback_action:", f"    variation: {_q(fallback)}"]
    if envs:
        lines.append("  environments:")
    for env, config in envs.items():
        state, mode = _environment(config)
        if state == "off":
            lines.append(f'    {env}: "off"')
        elif state == "custom":
            lines.append(f"    # {env}: rules or splits a contract does not express; kept as is")
        else:
            lines.append(f"    {env}: {{state: {state}, mode: {_q(mode)}}}")
    lines += _tools(tools)
    return "\n".join(lines) + "\n"
