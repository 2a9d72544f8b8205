"""The lifecycle of temporary behaviors: derived stages, cleanup rules and stale detection.

Standard library only, no I/O and no clock: the caller passes the facts it read (each
environment's configuration history, evaluation counts, guardrail breaches) and the time.

* :mod:`.serving` — what one environment's configuration serves (nothing, some, everyone);
* :mod:`.stages` — the stage a behavior is in: defined → in development → rolling out →
  released → cleanup due → archived;
* :mod:`.rules` — machine-readable cleanup rules, from a contract's ``cleanup_rule`` (its
  fields, or the article's words), and whether one is met;
* :mod:`.stale` — stale behaviors per environment, and default lifetimes per behavior kind.
"""

from __future__ import annotations

from lockgate.lifecycle.rules import (
    RULE_KINDS,
    CleanupRule,
    RuleCheck,
    RuleError,
    check_rule,
    parse_duration,
    rule_from_contract,
    rule_from_text,
)
from lockgate.lifecycle.serving import full_release_since, serves_anyone, serves_everyone
from lockgate.lifecycle.stages import (
    BehaviorFacts,
    ConfigVersion,
    EnvironmentFacts,
    Lifecycle,
    Stage,
    derive,
)
from lockgate.lifecycle.stale import (
    DEFAULT_LIFETIME_DAYS,
    DEFAULT_STALE_DAYS,
    StaleFinding,
    find_stale,
)

__all__ = [
    "DEFAULT_LIFETIME_DAYS",
    "DEFAULT_STALE_DAYS",
    "RULE_KINDS",
    "BehaviorFacts",
    "CleanupRule",
    "ConfigVersion",
    "EnvironmentFacts",
    "Lifecycle",
    "RuleCheck",
    "RuleError",
    "Stage",
    "StaleFinding",
    "check_rule",
    "derive",
    "find_stale",
    "full_release_since",
    "parse_duration",
    "rule_from_contract",
    "rule_from_text",
    "serves_anyone",
    "serves_everyone",
]
