"""LaunchDarkly (`launchdarkly-server-sdk`): the file data source, with events off.

The flag is written in LaunchDarkly's own flag JSON (rules with `endsWith` / `in` clauses,
a percentage rollout in the fallthrough) to a file that `Files.new_data_source` loads once;
`send_events=False` removes the event processor, so nothing touches the network.
(`TestData` cannot express `endsWith` or rollouts, hence the file source.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peers.base import Adapter, Evaluator, Unavailable
from workload import Context, FlagSpec

_OPS = {"ends_with": "endsWith", "equals": "in", "in": "in"}


def flag_document(flag: FlagSpec) -> dict[str, Any]:
    """The flag as a LaunchDarkly flag-data file (`{"flags": {key: flag JSON}}`)."""
    index = {variation: i for i, variation in enumerate(flag.variations)}
    rules = [
        {
            "id": rule.id,
            "clauses": [
                {
                    "contextKind": "user",
                    "attribute": clause.attribute,
                    "op": _OPS[clause.op],
                    "values": list(clause.values),
                    "negate": False,
                }
                for clause in rule.clauses
            ],
            "variation": index[rule.variation],
            "trackEvents": False,
        }
        for rule in flag.rules
    ]
    rollout = {
        "kind": "rollout",
        "contextKind": "user",
        "bucketBy": "key",
        "variations": [
            {"variation": index[part.variation], "weight": part.weight} for part in flag.split
        ],
    }
    ld_flag = {
        "key": flag.key,
        "version": 1,
        "on": True,
        "variations": list(flag.variations),
        "offVariation": index[flag.default_value],
        "targets": [],
        "contextTargets": [],
        "prerequisites": [],
        "rules": rules,
        "fallthrough": {"rollout": rollout},
        "salt": flag.salt,
        "trackEvents": False,
        "trackEventsFallthrough": False,
        "clientSide": False,
        "deleted": False,
    }
    return {"flags": {flag.key: ld_flag}}


def _build(flag: FlagSpec, workdir: Path) -> Evaluator:
    from ldclient import Context as LDContext
    from ldclient.client import LDClient
    from ldclient.config import Config
    from ldclient.integrations import Files

    path = workdir / "launchdarkly-flags.json"
    path.write_text(json.dumps(flag_document(flag), indent=2))
    config = Config(
        sdk_key="offline-bench-key",
        update_processor_class=Files.new_data_source(paths=[str(path)], auto_update=False),
        send_events=False,
        diagnostic_opt_out=True,
    )
    client = LDClient(config=config, start_wait=5)
    if not client.is_initialized():
        raise Unavailable("the LaunchDarkly file data source did not initialize")
    key, default = flag.key, flag.default_value
    variation = client.variation

    def prepare(ctx: Context) -> Any:
        builder = LDContext.builder(ctx["key"]).kind("user")
        for attribute, value in ctx.items():
            if attribute != "key":
                builder.set(attribute, value)
        return builder.build()

    def evaluate(context: Any) -> str:
        return variation(key, context, default)

    return Evaluator(prepare_context=prepare, evaluate=evaluate, close=client.close)


ADAPTER = Adapter(
    name="launchdarkly",
    distribution="launchdarkly-server-sdk",
    setup="LDClient(Config(update_processor_class=Files.new_data_source([flag file]), "
    "send_events=False)); timed: client.variation(key, Context, default)",
    build=_build,
)
