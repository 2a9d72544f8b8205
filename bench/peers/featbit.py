"""FeatBit (`fb-python-sdk`): offline client bootstrapped from a data-sync JSON document.

`Config(offline=True)` starts no network component; `initialize_from_external_json` loads
the same document the streaming endpoint would send (`messageType: data-sync`).
The public `variation(key, user_dict, default)` call takes a plain dict and builds its
`FBUser` inside the call, so that conversion is part of FeatBit's measured time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peers.base import Adapter, Evaluator, Unavailable
from workload import Clause, Context, FlagSpec

_UPDATED_AT = "2024-06-01T00:00:00.000Z"
_OPS = {"ends_with": "EndsWith", "equals": "Equal", "in": "IsOneOf"}


def _condition(clause: Clause) -> dict[str, str]:
    value = json.dumps(list(clause.values)) if clause.op == "in" else clause.values[0]
    return {"property": clause.attribute, "op": _OPS[clause.op], "value": value}


def _serve(variation: str) -> list[dict[str, Any]]:
    return [{"id": variation, "rollout": [0, 1], "exptRollout": 1}]


def data_sync_document(flag: FlagSpec) -> dict[str, Any]:
    """The flag as FeatBit's `data-sync` message (what its streaming endpoint delivers)."""
    rollouts: list[dict[str, Any]] = []
    start = 0.0
    for part in flag.split:
        end = start + part.weight / 100_000
        rollouts.append({"id": part.variation, "rollout": [start, end], "exptRollout": 1})
        start = end
    feature = {
        "id": "00000000-0000-0000-0000-000000000001",
        "envId": "00000000-0000-0000-0000-00000000e001",
        "key": flag.key,
        "name": flag.key,
        "variationType": "string",
        "variations": [{"id": v, "value": v} for v in flag.variations],
        "isEnabled": True,
        "disabledVariationId": flag.default_value,
        "targetUsers": [],
        "rules": [
            {
                "id": rule.id,
                "name": rule.id,
                "dispatchKey": None,
                "includedInExpt": False,
                "conditions": [_condition(c) for c in rule.clauses],
                "variations": _serve(rule.variation),
            }
            for rule in flag.rules
        ],
        "fallthrough": {"dispatchKey": "keyid", "includedInExpt": False, "variations": rollouts},
        "exptIncludeAllTargets": False,
        "isArchived": False,
        "tags": [],
        "updatedAt": _UPDATED_AT,
    }
    return {
        "messageType": "data-sync",
        "data": {"eventType": "full", "featureFlags": [feature], "segments": []},
    }


def _build(flag: FlagSpec, workdir: Path) -> Evaluator:
    del workdir
    from fbclient.client import FBClient
    from fbclient.config import Config

    config = Config("offline-bench-secret", "http://127.0.0.1:1", "ws://127.0.0.1:1", offline=True)
    client = FBClient(config, start_wait=0)
    if not client.initialize_from_external_json(json.dumps(data_sync_document(flag))):
        raise Unavailable("FeatBit rejected the data-sync document")
    key, default = flag.key, flag.default_value
    variation = client.variation

    def prepare(ctx: Context) -> dict[str, str]:
        return {"name": ctx["key"], **ctx}  # FeatBit requires a user name

    def evaluate(user: dict[str, str]) -> str:
        return variation(key, user, default)

    return Evaluator(prepare_context=prepare, evaluate=evaluate, close=client.stop)


ADAPTER = Adapter(
    name="featbit",
    distribution="fb-python-sdk",
    setup="FBClient(Config(offline=True)) + initialize_from_external_json(data-sync doc); "
    "timed: client.variation(key, user_dict, default)",
    build=_build,
)
