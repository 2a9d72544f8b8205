"""The benchmarked flag and the contexts it is evaluated against.

The flag is described once, SDK-neutrally, by `FLAG`; every adapter in `peers/` translates
it into its own SDK's native document. The contexts are generated deterministically so
every run (and every SDK in a run) sees exactly the same inputs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Op = Literal["ends_with", "equals", "in"]
Context = dict[str, str]


@dataclass(frozen=True)
class Clause:
    attribute: str
    op: Op
    values: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    id: str
    clauses: tuple[Clause, ...]
    variation: str


@dataclass(frozen=True)
class SplitPart:
    variation: str
    weight: int  # in units of 0.001 % (the parts sum to 100_000)


@dataclass(frozen=True)
class FlagSpec:
    """A string flag: ordered rules (clauses ANDed), then a percentage split by `key`."""

    key: str
    variations: tuple[str, ...]
    rules: tuple[Rule, ...]
    split: tuple[SplitPart, ...]
    default_value: str

    @property
    def salt(self) -> str:
        return self.key


MODES = ("off", "fallback", "observe", "draft_only", "approval_required", "full")

FLAG = FlagSpec(
    key="agent-mode",
    variations=MODES,
    rules=(
        Rule("rule-1", (Clause("email", "ends_with", ("@example-corp.com",)),), "full"),
        Rule(
            "rule-2",
            (
                Clause("plan", "equals", ("enterprise",)),
                Clause("country", "in", ("DE", "FR", "NL")),
            ),
            "approval_required",
        ),
        Rule("rule-3", (Clause("segment", "in", ("beta-1", "beta-2", "beta-3")),), "draft_only"),
    ),
    split=(SplitPart("observe", 20_000), SplitPart("off", 80_000)),
    default_value="off",
)

_PLANS = ("free", "pro", "team", "enterprise")
_COUNTRIES = ("DE", "FR", "NL", "US", "GB", "JP", "BR", "IN", "ES", "IT")
_SEGMENTS = ("beta-1", "beta-2", "beta-3")
_OTHER_SEGMENTS = ("beta-4", "beta", "alpha-1", "ga", "Beta-1")
_OTHER_DOMAINS = (
    "@example.com",
    "@corp.example",
    "@example-corp.co",
    "@example-corp.com.evil.io",
    "@EXAMPLE-CORP.COM",
    "@sub.example-corp.org",
)


def _email(rng: random.Random, key: str, domain: str) -> str:
    return f"{key.replace('user-', 'u')}.{rng.randrange(1000)}{domain}"


def _base(rng: random.Random, index: int) -> Context:
    """A context that matches no rule; some attributes may be missing."""
    key = f"user-{index}-{rng.getrandbits(32):08x}"
    ctx: Context = {"key": key}
    if rng.random() < 0.9:
        ctx["email"] = _email(rng, key, rng.choice(_OTHER_DOMAINS))
    if rng.random() < 0.9:
        ctx["plan"] = rng.choice(("free", "pro", "team"))
    if rng.random() < 0.9:
        ctx["country"] = rng.choice(_COUNTRIES)
    if rng.random() < 0.5:
        ctx["segment"] = rng.choice(_OTHER_SEGMENTS)
    return ctx


def make_contexts(count: int, seed: int = 20_240_601) -> list[Context]:
    """`count` contexts: ~15 % rule 1, ~10 % rule 2 plus ~5 % near misses of it,
    ~15 % rule 3, the rest falling through to the percentage split."""
    rng = random.Random(seed)
    contexts: list[Context] = []
    for index in range(count):
        ctx = _base(rng, index)
        draw = rng.random()
        if draw < 0.15:  # rule 1 (other attributes may also match later rules)
            ctx["email"] = _email(rng, ctx["key"], "@example-corp.com")
            if rng.random() < 0.3:
                ctx["plan"], ctx["country"] = "enterprise", rng.choice(("DE", "FR", "NL"))
            if rng.random() < 0.3:
                ctx["segment"] = rng.choice(_SEGMENTS)
        elif draw < 0.25:  # rule 2
            ctx["plan"], ctx["country"] = "enterprise", rng.choice(("DE", "FR", "NL"))
            if rng.random() < 0.3:
                ctx["segment"] = rng.choice(_SEGMENTS)
        elif draw < 0.30:  # near misses of rule 2: only one clause holds
            if rng.random() < 0.5:
                ctx["plan"], ctx["country"] = "enterprise", rng.choice(("US", "GB", "de", "JP"))
            else:
                ctx["plan"] = rng.choice(_PLANS[:3])
                ctx["country"] = rng.choice(("DE", "FR", "NL"))
            if rng.random() < 0.2:
                del ctx["country"]
        elif draw < 0.45:  # rule 3
            ctx["segment"] = rng.choice(_SEGMENTS)
        contexts.append(ctx)
    return contexts
