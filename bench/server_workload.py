"""The environment the server benchmarks create: production-like `mode` flags, and contexts.

`flags(n)` describes n flags SDK-neutrally enough to be created through lockgate's API
(`lockgate_config`) and, for the Unleash peer, as toggles with one strategy per rule
(`unleash_strategies`). Deterministic: the same every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

MODES = ("off", "fallback", "observe", "draft_only", "approval_required", "full")


@dataclass(frozen=True)
class Cond:
    attribute: str
    op: str  # lockgate operator
    values: tuple[Any, ...]


@dataclass(frozen=True)
class BenchRule:
    id: str
    conds: tuple[Cond, ...]
    variation: str


@dataclass(frozen=True)
class BenchFlag:
    key: str
    on: bool
    client_visible: bool
    targets: tuple[str, ...]  # user keys served `full`
    rules: tuple[BenchRule, ...]
    observe_weight: int  # default split: observe / off, in units of 0.001 %


_RULE_TEMPLATES: tuple[BenchRule, ...] = (
    BenchRule("internal", (Cond("email", "ends_with", ("@example-corp.com",)),), "full"),
    BenchRule(
        "eu-enterprise",
        (Cond("plan", "in", ("enterprise",)), Cond("country", "in", ("DE", "FR", "NL"))),
        "approval_required",
    ),
    BenchRule("beta", (Cond("segment", "in", ("beta-1", "beta-2", "beta-3")),), "draft_only"),
    BenchRule("new-clients", (Cond("app_version", "semver_gt", ("2.4.0",)),), "observe"),
    BenchRule("small-teams", (Cond("seats", "lt", (10,)),), "fallback"),
    BenchRule(
        "staff-tools",
        (Cond("email", "starts_with", ("ops-", "sre-")), Cond("plan", "in", ("team", "pro"))),
        "full",
    ),
)


def flags(count: int = 50) -> list[BenchFlag]:
    """`count` mode flags with 2-4 rules each (rotating templates), targets and a split."""
    result = []
    for i in range(count):
        picked = [_RULE_TEMPLATES[(i + j) % len(_RULE_TEMPLATES)] for j in range(2 + i % 3)]
        result.append(
            BenchFlag(
                key=f"agent-{i:02d}-mode",
                on=i % 10 != 9,
                client_visible=i % 5 == 0,
                targets=tuple(f"user-{i * 13 + j}" for j in range(4)),
                rules=tuple(picked),
                observe_weight=5_000 * (1 + i % 8),
            )
        )
    return result


def split(observe_weight: int) -> dict[str, Any]:
    return {
        "split": [
            {"variation": "observe", "weight": observe_weight},
            {"variation": "off", "weight": 100_000 - observe_weight},
        ]
    }


def lockgate_config(flag: BenchFlag) -> dict[str, Any]:
    """The body of PATCH .../flags/{key}/environments/{env} for this flag."""
    return {
        "on": flag.on,
        "targets": [{"variation": "full", "values": list(flag.targets)}],
        "rules": [
            {
                "id": rule.id,
                "clauses": [
                    {"attribute": c.attribute, "op": c.op, "values": list(c.values)}
                    for c in rule.conds
                ],
                "serve": {"variation": rule.variation},
            }
            for rule in flag.rules
        ],
        "default": split(flag.observe_weight),
    }


# -- Unleash ----------------------------------------------------------------------------------

_UNLEASH_OPS = {
    "ends_with": "STR_ENDS_WITH",
    "starts_with": "STR_STARTS_WITH",
    "in": "IN",
    "semver_gt": "SEMVER_GT",
    "lt": "NUM_LT",
}
_SINGLE_VALUE = {"SEMVER_GT", "NUM_LT"}
CONTEXT_FIELDS = ("email", "plan", "country", "segment", "app_version", "seats")


def _constraint(cond: Cond) -> dict[str, Any]:
    op = _UNLEASH_OPS[cond.op]
    out: dict[str, Any] = {
        "contextName": cond.attribute,
        "operator": op,
        "caseInsensitive": False,
        "inverted": False,
    }
    if op in _SINGLE_VALUE:
        out["value"] = str(cond.values[0])
    else:
        out["values"] = [str(v) for v in cond.values]
    return out


def _variants(weights: list[tuple[str, int]]) -> list[dict[str, Any]]:
    return [
        {"name": name, "weight": weight, "weightType": "variable", "stickiness": "default"}
        for name, weight in weights
    ]


def unleash_strategies(flag: BenchFlag) -> list[dict[str, Any]]:
    """The flag as Unleash strategies, in order: targets, one per rule, then the split.

    Each is a `flexibleRollout` at 100 % whose strategy variants serve the rule's variation
    (Unleash evaluates a toggle's strategies in order and serves the first enabled one's
    variants), so the ruleset it delivers has the same rules, values and split.
    """
    params = {"rollout": "100", "stickiness": "default", "groupId": flag.key}
    out = [
        {
            "name": "flexibleRollout",
            "title": "targets",
            "constraints": [
                {
                    "contextName": "userId",
                    "operator": "IN",
                    "values": list(flag.targets),
                    "caseInsensitive": False,
                    "inverted": False,
                }
            ],
            "parameters": params,
            "variants": _variants([("full", 1000)]),
        }
    ]
    out += [
        {
            "name": "flexibleRollout",
            "title": rule.id,
            "constraints": [_constraint(c) for c in rule.conds],
            "parameters": params,
            "variants": _variants([(rule.variation, 1000)]),
        }
        for rule in flag.rules
    ]
    observe = flag.observe_weight // 100
    out.append(
        {
            "name": "flexibleRollout",
            "title": "default",
            "constraints": [],
            "parameters": params,
            "variants": _variants([("observe", observe), ("off", 1000 - observe)]),
        }
    )
    return out


# -- contexts ---------------------------------------------------------------------------------


def contexts(count: int, seed: int = 20_261_125) -> list[dict[str, Any]]:
    """Deterministic evaluation contexts hitting every rule and the split."""
    rng = random.Random(seed)
    domains = ("@example-corp.com", "@example.com", "@mail.test", "@corp.example")
    out = []
    for i in range(count):
        user = f"user-{rng.randrange(1000)}"
        prefix = rng.choice(("ops-", "sre-", "dev-", ""))
        out.append(
            {
                "key": user,
                "email": f"{prefix}{user}{rng.choice(domains)}",
                "plan": rng.choice(("free", "pro", "team", "enterprise")),
                "country": rng.choice(("DE", "FR", "NL", "US", "GB", "JP")),
                "segment": rng.choice(("beta-1", "beta-2", "beta-3", "ga", "alpha")),
                "app_version": rng.choice(("2.3.9", "2.4.0", "2.4.1", "3.0.0")),
                "seats": rng.randrange(1, 200) if i % 7 else 3,
            }
        )
    return out
