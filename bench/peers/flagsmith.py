"""Flagsmith (`flagsmith`): offline mode, local evaluation from an environment document.

`Flagsmith(offline_mode=True, offline_handler=LocalFileHandler(path))` never creates an
HTTP session; identities are evaluated locally by `flag_engine`. Each rule is a segment
(`REGEX` for the suffix, since Flagsmith has no ends-with operator; `EQUAL`; `IN`) with
a segment override of the feature, ordered by override priority. The split is the
feature's multivariate allocation (20 % `observe`), the control value being `off`.
Timed: `get_identity_flags(identifier, traits).get_feature_value(key)`.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

from peers.base import Adapter, Evaluator, Unavailable
from workload import Clause, Context, FlagSpec

_OPS = {"ends_with": "REGEX", "equals": "EQUAL", "in": "IN"}


def _condition(clause: Clause) -> dict[str, str]:
    if clause.op == "ends_with":
        value = ".*" + re.escape(clause.values[0]) + "$"  # REGEX uses re.match
    else:
        value = ",".join(clause.values)
    return {"operator": _OPS[clause.op], "property_": clause.attribute, "value": value}


def _uuid(n: int) -> str:
    return str(uuid.UUID(int=n))


def environment_document(flag: FlagSpec) -> dict[str, Any]:
    """The flag as a Flagsmith environment document (what `/environment-document/` returns)."""
    feature = {"id": 1, "name": flag.key, "type": "MULTIVARIATE"}
    *variants, control = flag.split
    segments = [
        {
            "id": 100 + number,
            "name": rule.id,
            "rules": [
                {
                    "type": "ALL",
                    "conditions": [],
                    "rules": [
                        {"type": "ALL", "conditions": [_condition(c)], "rules": []}
                        for c in rule.clauses
                    ],
                }
            ],
            "feature_states": [
                {
                    "django_id": 10 + number,
                    "featurestate_uuid": _uuid(10 + number),
                    "feature": feature,
                    "enabled": True,
                    "feature_state_value": rule.variation,
                    "feature_segment": {"priority": number},
                    "multivariate_feature_state_values": [],
                }
            ],
        }
        for number, rule in enumerate(flag.rules)
    ]
    return {
        "api_key": "offline-bench-environment",
        "name": "bench",
        "updated_at": "2024-06-01T00:00:00+00:00",
        "feature_states": [
            {
                "django_id": 1,
                "featurestate_uuid": _uuid(1),
                "feature": feature,
                "enabled": True,
                "feature_state_value": control.variation,
                "feature_segment": None,
                "multivariate_feature_state_values": [
                    {
                        "id": 1000 + number,
                        "mv_fs_value_uuid": _uuid(1000 + number),
                        "multivariate_feature_option": {"value": part.variation},
                        "percentage_allocation": part.weight / 1000,
                    }
                    for number, part in enumerate(variants)
                ],
            }
        ],
        "identity_overrides": [],
        "project": {"segments": segments},
    }


def _build(flag: FlagSpec, workdir: Path) -> Evaluator:
    from flagsmith import Flagsmith
    from flagsmith.offline_handlers import LocalFileHandler

    path = workdir / "flagsmith-environment.json"
    path.write_text(json.dumps(environment_document(flag), indent=2))
    client = Flagsmith(offline_mode=True, offline_handler=LocalFileHandler(str(path)))
    if flag.key not in client.get_environment_flags().flags:
        raise Unavailable("Flagsmith did not load the feature from the environment document")
    key = flag.key
    get_identity_flags = client.get_identity_flags

    def prepare(ctx: Context) -> tuple[str, dict[str, str]]:
        traits = {name: value for name, value in ctx.items() if name != "key"}
        return ctx["key"], traits

    def evaluate(identity: tuple[str, dict[str, str]]) -> str:
        return get_identity_flags(identity[0], identity[1]).get_feature_value(key)

    return Evaluator(prepare_context=prepare, evaluate=evaluate)


ADAPTER = Adapter(
    name="flagsmith",
    distribution="flagsmith",
    setup="Flagsmith(offline_mode=True, offline_handler=LocalFileHandler(environment doc)); "
    "timed: client.get_identity_flags(id, traits).get_feature_value(key)",
    build=_build,
)
