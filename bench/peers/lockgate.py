"""lockgate: the SDK in offline (bootstrap) mode, from a `lockgate.snapshot/1` document.

The timed call is `client.detail(key, context, default)`, which returns value, variation,
reason and rule id; the adapter hands back `.value`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peers.base import Adapter, Detail, Evaluator, Unavailable
from workload import Clause, Context, FlagSpec


def _clause(clause: Clause) -> dict[str, Any]:
    return {"attribute": clause.attribute, "op": clause.op, "values": list(clause.values)}


def snapshot_document(flag: FlagSpec) -> dict[str, Any]:
    """The flag as a lockgate snapshot (see docs/snapshot-format.md)."""
    lockgate_flag = {
        "key": flag.key,
        "version": 1,
        "kind": "mode",
        "variations": [{"key": v, "value": v} for v in flag.variations],
        "on": True,
        "off_variation": flag.default_value,
        "targets": [],
        "rules": [
            {
                "id": rule.id,
                "clauses": [_clause(c) for c in rule.clauses],
                "serve": {"variation": rule.variation},
            }
            for rule in flag.rules
        ],
        "default": {"split": [{"variation": p.variation, "weight": p.weight} for p in flag.split]},
        "prerequisites": [],
        "bucket_by": "key",
        "salt": flag.salt,
    }
    return {
        "format": "lockgate.snapshot/1",
        "project": "bench",
        "environment": "bench",
        "version": 1,
        "flags": {flag.key: lockgate_flag},
        "segments": {},
    }


def _build(flag: FlagSpec, workdir: Path) -> Evaluator:
    del workdir
    try:
        from lockgate.sdk import LockgateClient
    except ImportError as exc:
        raise Unavailable(f"lockgate.sdk cannot be imported yet ({exc})") from exc

    client = LockgateClient.from_snapshot(snapshot_document(flag))
    key, default = flag.key, flag.default_value
    detail_call = client.detail

    def evaluate(ctx: Context) -> str:
        return detail_call(key, ctx, default).value

    def detail(ctx: Context) -> Detail:
        result = detail_call(key, ctx, default)
        return result.value, result.variation, str(result.reason), result.rule_id

    return Evaluator(prepare_context=lambda ctx: ctx, evaluate=evaluate, detail=detail)


ADAPTER = Adapter(
    name="lockgate",
    distribution="lockgate",
    setup="LockgateClient.from_snapshot(snapshot dict); "
    "timed: client.detail(key, context_dict, default).value",
    build=_build,
)
