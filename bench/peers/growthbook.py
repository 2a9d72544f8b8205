"""GrowthBook (`growthbook`): a `GrowthBook` instance given a features dict, no client key.

Without `client_key`/`api_host` the SDK never fetches. Rules 1-3 are force rules with
MongoDB-style conditions (`$regex` for the suffix, since GrowthBook has no ends-with
operator, and `$in`); the split is one force rule per part with a hash `range` over
`id` (GrowthBook's percentage rollout). The timed call is the documented server pattern:
`set_attributes(attributes)` then `get_feature_value(key, default)`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from peers.base import Adapter, Evaluator
from workload import Clause, Context, FlagSpec


def _condition(clause: Clause) -> Any:
    if clause.op == "ends_with":
        return {"$regex": re.escape(clause.values[0]) + "$"}
    if clause.op == "equals":
        return clause.values[0]
    return {"$in": list(clause.values)}


def features_document(flag: FlagSpec) -> dict[str, Any]:
    """The flag as a GrowthBook `features` payload."""
    rules: list[dict[str, Any]] = [
        {
            "id": rule.id,
            "condition": {c.attribute: _condition(c) for c in rule.clauses},
            "force": rule.variation,
        }
        for rule in flag.rules
    ]
    start = 0.0
    for index, part in enumerate(flag.split):
        end = start + part.weight / 100_000
        rules.append(
            {
                "id": f"split-{index}",
                "force": part.variation,
                "hashAttribute": "id",
                "seed": flag.salt,
                "hashVersion": 2,
                "range": [start, end],
            }
        )
        start = end
    return {flag.key: {"defaultValue": flag.default_value, "rules": rules}}


def _build(flag: FlagSpec, workdir: Path) -> Evaluator:
    del workdir
    from growthbook import GrowthBook

    gb = GrowthBook(features=features_document(flag))
    key, default = flag.key, flag.default_value
    set_attributes, get_feature_value = gb.set_attributes, gb.get_feature_value

    def prepare(ctx: Context) -> dict[str, str]:
        attributes = dict(ctx)
        attributes["id"] = attributes.pop("key")
        return attributes

    def evaluate(attributes: dict[str, str]) -> str:
        set_attributes(attributes)
        return get_feature_value(key, default)

    return Evaluator(prepare_context=prepare, evaluate=evaluate, close=gb.destroy)


ADAPTER = Adapter(
    name="growthbook",
    distribution="growthbook",
    setup="GrowthBook(features={...}) without client_key; "
    "timed: gb.set_attributes(attrs); gb.get_feature_value(key, default)",
    build=_build,
)
