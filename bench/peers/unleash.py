"""Unleash (`UnleashClient`): bootstrapped from a features document, no fetching.

A `FileCache` (in the run's work directory) is bootstrapped with the client-features
JSON; `initialize_client(fetch_toggles=False)` then loads it through the offline
connector, and `disable_metrics` / `disable_registration` keep every request away.
Each rule is a `flexibleRollout` strategy at 100 % with constraints (`STR_ENDS_WITH`,
`IN`) and a single strategy variant; the last strategy has no constraints and splits
200/800 (‰) between `observe` and `off` by `userId`. Evaluation runs in Unleash's Rust
engine (yggdrasil) through ctypes. Timed: `client.get_variant(key, context)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peers.base import Adapter, Evaluator, Unavailable
from workload import Clause, Context, FlagSpec

_OPS = {"ends_with": "STR_ENDS_WITH", "equals": "IN", "in": "IN"}


def _constraint(clause: Clause) -> dict[str, Any]:
    return {
        "contextName": clause.attribute,
        "operator": _OPS[clause.op],
        "values": list(clause.values),
        "caseInsensitive": False,
        "inverted": False,
    }


def _variant(variation: str, weight: int) -> dict[str, Any]:
    return {
        "name": variation,
        "weight": weight,
        "weightType": "fix",
        "stickiness": "userId",
        "payload": {"type": "string", "value": variation},
    }


def _strategy(
    flag: FlagSpec, constraints: list[dict[str, Any]], variants: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "name": "flexibleRollout",
        "parameters": {"rollout": "100", "stickiness": "userId", "groupId": flag.salt},
        "constraints": constraints,
        "variants": variants,
    }


def features_document(flag: FlagSpec) -> dict[str, Any]:
    """The flag as Unleash's `/api/client/features` response."""
    strategies = [
        _strategy(flag, [_constraint(c) for c in rule.clauses], [_variant(rule.variation, 1000)])
        for rule in flag.rules
    ]
    split = [_variant(part.variation, part.weight // 100) for part in flag.split]
    strategies.append(_strategy(flag, [], split))
    feature = {
        "name": flag.key,
        "type": "release",
        "project": "default",
        "enabled": True,
        "stale": False,
        "impressionData": False,
        "strategies": strategies,
        "variants": [],
    }
    return {"version": 2, "features": [feature]}


def _build(flag: FlagSpec, workdir: Path) -> Evaluator:
    from UnleashClient import UnleashClient
    from UnleashClient.cache import FileCache

    cache = FileCache("lockgate-bench", directory=str(workdir / "unleash-cache"))
    cache.bootstrap_from_dict(features_document(flag))
    client = UnleashClient(
        url="http://127.0.0.1:1/unused",
        app_name="lockgate-bench",
        refresh_interval=3600,
        disable_metrics=True,
        disable_registration=True,
        cache=cache,
    )
    client.initialize_client(fetch_toggles=False)
    if flag.key not in client.feature_definitions():
        raise Unavailable("Unleash did not load the feature from the bootstrap document")
    key, default = flag.key, flag.default_value
    get_variant = client.get_variant

    def prepare(ctx: Context) -> dict[str, Any]:
        properties = {name: value for name, value in ctx.items() if name != "key"}
        return {"userId": ctx["key"], "properties": properties}

    def evaluate(context: dict[str, Any]) -> str:
        variant = get_variant(key, context)
        return variant["payload"]["value"] if variant["enabled"] else default

    return Evaluator(prepare_context=prepare, evaluate=evaluate, close=client.destroy)


ADAPTER = Adapter(
    name="unleash",
    distribution="UnleashClient",
    setup="UnleashClient(cache=FileCache bootstrapped with the features doc, metrics and "
    "registration off) + initialize_client(fetch_toggles=False); "
    "timed: client.get_variant(key, context)",
    build=_build,
)
