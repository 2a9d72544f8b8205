"""The floor: a minimal hand-written evaluator of exactly this flag, in plain Python.

It knows the flag's shape at build time (no document interpretation at evaluation time)
and buckets exactly as lockgate does (SHA-256 of `salt/key`, 100 000 buckets), so it must
agree with lockgate on every context, percentage split included. It returns value,
variation and reason like lockgate's `detail()`; any SDK that interprets a flag document
should be slower than this.
"""

from __future__ import annotations

from hashlib import sha256
from pathlib import Path

from peers.base import Adapter, Detail, Evaluator
from workload import Context, FlagSpec


def _build(flag: FlagSpec, workdir: Path) -> Evaluator:
    del workdir
    rule1, rule2, rule3 = flag.rules
    suffix = rule1.clauses[0].values[0]
    plan = rule2.clauses[0].values[0]
    countries = frozenset(rule2.clauses[1].values)
    segments = frozenset(rule3.clauses[0].values)
    first, second = flag.split
    threshold = first.weight
    prefix = (flag.salt + "/").encode()
    full = (rule1.variation, rule1.variation, "RULE_MATCH", rule1.id)
    approval = (rule2.variation, rule2.variation, "RULE_MATCH", rule2.id)
    draft = (rule3.variation, rule3.variation, "RULE_MATCH", rule3.id)
    split_low = (first.variation, first.variation, "SPLIT", None)
    split_high = (second.variation, second.variation, "SPLIT", None)
    missing_key = (flag.default_value, None, "ERROR", None)

    def detail(ctx: Context) -> Detail:
        email = ctx.get("email")
        if email is not None and email.endswith(suffix):
            return full
        if ctx.get("plan") == plan and ctx.get("country") in countries:
            return approval
        if ctx.get("segment") in segments:
            return draft
        key = ctx.get("key")
        if key is None:
            return missing_key
        digest = sha256(prefix + key.encode()).digest()
        bucket = (int.from_bytes(digest[:8], "big") * 100_000) >> 64
        return split_low if bucket < threshold else split_high

    def evaluate(ctx: Context) -> str:
        return detail(ctx)[0]

    return Evaluator(prepare_context=lambda ctx: ctx, evaluate=evaluate, detail=detail)


ADAPTER = Adapter(
    name="floor",
    distribution=None,
    setup="hand-written plain-Python evaluator of this one flag; same bucketing as lockgate",
    build=_build,
)
