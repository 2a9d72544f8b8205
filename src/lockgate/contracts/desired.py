"""What a contract asks of a behavior: its definition, and its configuration per environment.

The contract owns the fields that decide exposure — ``on``, the off variation, the default
and the rules whose id starts with ``contract-`` — and leaves every other rule, target and
prerequisite as the live configuration has it.
"""

from __future__ import annotations

from typing import Any

from lockgate.contracts.model import Contract, EnvironmentState
from lockgate.engine.modes import Mode

__all__ = ["CONTRACT_RULE_PREFIX", "desired_config", "desired_definition"]

CONTRACT_RULE_PREFIX = "contract-"
FIRST_AUDIENCE_RULE = "contract-first-audience"
_APPROVAL = Mode.APPROVAL_REQUIRED


def desired_definition(contract: Contract) -> dict[str, Any]:
    """The definition fields a contract sets (name, owner, risk tier, behavior kind)."""
    values: dict[str, Any] = {
        "name": (contract.behavior or contract.key or "")[:200],
        "owner": contract.owner[:200],
        "risk_tier": contract.risk_level,
    }
    if contract.kind is not None:
        values["behavior_kind"] = contract.kind
    return values


def _approval_rules(
    contract: Contract, mode: str, audience: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Contexts under an approval condition get at most ``approval_required``."""
    if Mode(mode).rank <= _APPROVAL.rank:
        return []
    rules = []
    for index, binding in enumerate(contract.approvals):
        clauses = binding.rule_clauses()
        if not clauses:
            continue
        rules.append(
            {
                "id": f"{CONTRACT_RULE_PREFIX}approval-{index + 1}",
                "clauses": audience + clauses,
                "serve": {"variation": _APPROVAL.value},
            }
        )
    return rules


def desired_config(
    contract: Contract, state: EnvironmentState, current: dict[str, Any]
) -> dict[str, Any]:
    """The configuration fields to set in one environment (only those that differ)."""
    others = [
        r
        for r in current.get("rules") or []
        if not str(r.get("id", "")).startswith(CONTRACT_RULE_PREFIX)
    ]
    wanted: dict[str, Any] = {"off_variation": contract.fallback}
    if state.state == "off" or state.mode is None:
        wanted |= {
            "on": False,
            "rules": others,
            "default": {"variation": contract.default_state},
        }
    elif state.state == "first_audience":
        audience = contract.first_audience.rule_clauses() if contract.first_audience else []
        wanted |= {
            "on": True,
            "rules": [
                *_approval_rules(contract, state.mode, audience),
                {
                    "id": FIRST_AUDIENCE_RULE,
                    "clauses": audience,
                    "serve": {"variation": state.mode},
                },
                *others,
            ],
            "default": {"variation": contract.default_state},
        }
    else:
        wanted |= {
            "on": True,
            "rules": [*_approval_rules(contract, state.mode, []), *others],
            "default": {"variation": state.mode},
        }
    return {k: v for k, v in wanted.items() if current.get(k) != v}
