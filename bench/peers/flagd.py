"""flagd (`openfeature-provider-flagd` under `openfeature-sdk`): in-process file resolver.

`FlagdProvider(resolver_type=FILE, offline_flag_source_path=path)` evaluates in process
from a flagd flag-definition file (JsonLogic targeting with flagd's `ends_with`, `in` and
`fractional` operators) and opens no connection. The timed call is OpenFeature's public
`client.get_string_value(key, default, EvaluationContext)`, so the OpenFeature client's
hook and provider plumbing is part of the measured time, as it is for any user.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peers.base import Adapter, Evaluator, Unavailable
from workload import Clause, Context, FlagSpec

_DOMAIN = "lockgate-bench"


def _condition(clause: Clause) -> dict[str, Any]:
    var = {"var": clause.attribute}
    if clause.op == "ends_with":
        return {"ends_with": [var, clause.values[0]]}
    if clause.op == "equals":
        return {"==": [var, clause.values[0]]}
    return {"in": [var, list(clause.values)]}


def flag_definitions(flag: FlagSpec) -> dict[str, Any]:
    """The flag as a flagd flag-definition file."""
    branches: list[Any] = []
    for rule in flag.rules:
        conditions = [_condition(c) for c in rule.clauses]
        branches += [conditions[0] if len(conditions) == 1 else {"and": conditions}, rule.variation]
    # Shorthand `fractional` buckets by [flag key, targetingKey].
    branches.append({"fractional": [[part.variation, part.weight] for part in flag.split]})
    return {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": {
            flag.key: {
                "state": "ENABLED",
                "variants": {v: v for v in flag.variations},
                "defaultVariant": flag.default_value,
                "targeting": {"if": branches},
            }
        },
    }


def _build(flag: FlagSpec, workdir: Path) -> Evaluator:
    from openfeature import api
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.provider import ProviderStatus

    path = workdir / "flagd-flags.json"
    path.write_text(json.dumps(flag_definitions(flag), indent=2))
    provider = FlagdProvider(
        resolver_type=ResolverType.FILE,
        offline_flag_source_path=str(path),
        deadline_ms=3_600_000,  # the file watcher re-checks the file once per deadline
    )
    api.set_provider_and_wait(provider, domain=_DOMAIN)
    client = api.get_client(domain=_DOMAIN)
    if client.get_provider_status() is not ProviderStatus.READY:
        raise Unavailable("the flagd file resolver did not become ready")
    key, default = flag.key, flag.default_value
    get_string_value = client.get_string_value

    def prepare(ctx: Context) -> Any:
        attributes = {name: value for name, value in ctx.items() if name != "key"}
        return EvaluationContext(targeting_key=ctx["key"], attributes=attributes)

    def evaluate(context: Any) -> str:
        return get_string_value(key, default, context)

    return Evaluator(prepare_context=prepare, evaluate=evaluate, close=provider.shutdown)


ADAPTER = Adapter(
    name="flagd",
    distribution="openfeature-provider-flagd",
    setup="OpenFeature client over FlagdProvider(resolver_type=FILE, "
    "offline_flag_source_path=flag file); timed: client.get_string_value(key, default, ctx)",
    build=_build,
)
