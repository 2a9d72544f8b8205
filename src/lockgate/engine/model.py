"""The evaluation model: flags, segments and the per-environment snapshot.

Values of these classes are immutable. They are built by :mod:`lockgate.engine.codec`
from the wire format (docs/snapshot-format.md) and checked by
:func:`lockgate.engine.validate.validate`; the model itself accepts any shape the codec
produces so that problems can be reported rather than raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lockgate.engine.problems import Problem

__all__ = [
    "BUCKET_SPACE",
    "SNAPSHOT_FORMAT",
    "Clause",
    "Flag",
    "FlagKind",
    "MetricBinding",
    "Prerequisite",
    "Rule",
    "Segment",
    "SegmentRule",
    "Serve",
    "Snapshot",
    "Target",
    "ToolBudget",
    "ToolDenial",
    "ToolSpec",
    "Variation",
    "WeightedVariation",
]

SNAPSHOT_FORMAT = "lockgate.snapshot/1"
BUCKET_SPACE = 100_000
"""Split weights are integers in units of 0.001 %; they sum to this."""


class FlagKind(StrEnum):
    BOOLEAN = "boolean"
    STRING = "string"
    NUMBER = "number"
    JSON = "json"
    MODE = "mode"


@dataclass(frozen=True, slots=True)
class Variation:
    key: str
    value: Any
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Clause:
    attribute: str | None
    op: str
    values: tuple[Any, ...]
    negate: bool = False
    case_insensitive: bool = False


@dataclass(frozen=True, slots=True)
class WeightedVariation:
    variation: str
    weight: int


@dataclass(frozen=True, slots=True)
class Serve:
    """A fixed variation, or a percentage split bucketed on ``bucket_by``."""

    variation: str | None = None
    split: tuple[WeightedVariation, ...] | None = None
    bucket_by: str | None = None

    @property
    def is_split(self) -> bool:
        return self.split is not None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    clauses: tuple[Clause, ...]
    serve: Serve
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Target:
    variation: str
    values: tuple[str, ...]
    attribute: str = "key"


@dataclass(frozen=True, slots=True)
class Prerequisite:
    flag: str
    variation: str


@dataclass(frozen=True, slots=True)
class Flag:
    key: str
    version: int
    kind: FlagKind
    variations: tuple[Variation, ...]
    default: Serve
    on: bool = True
    off_variation: str | None = None
    targets: tuple[Target, ...] = ()
    rules: tuple[Rule, ...] = ()
    prerequisites: tuple[Prerequisite, ...] = ()
    bucket_by: str = "key"
    salt: str | None = None
    client_visible: bool = False
    # Reversal: a killed flag, or one an active incident covers, serves ``off_variation``
    # to everyone; an exclusion (targeted rollback) serves it to one audience first.
    killed: bool = False
    incidents: tuple[str, ...] = ()
    exclusions: tuple[Rule, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def halted(self) -> bool:
        """Killed or under an incident: the fallback for everyone."""
        return self.killed or bool(self.incidents)

    @property
    def effective_salt(self) -> str:
        return self.key if self.salt is None else self.salt

    def variation(self, key: str | None) -> Variation | None:
        for candidate in self.variations:
            if candidate.key == key:
                return candidate
        return None


@dataclass(frozen=True, slots=True)
class SegmentRule:
    id: str
    clauses: tuple[Clause, ...]


@dataclass(frozen=True, slots=True)
class Segment:
    key: str
    version: int
    included: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    rules: tuple[SegmentRule, ...] = ()
    attribute: str = "key"
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class ToolBudget:
    """At most ``calls`` allowed calls of a tool per ``window`` seconds for each value of
    the context attribute ``per`` (a damage limiter, enforced where the calls happen)."""

    calls: int
    window: int
    per: str = "key"


@dataclass(frozen=True, slots=True)
class ToolDenial:
    """An audience (clauses, ANDed) denied one tool; no clause means everyone."""

    id: str
    clauses: tuple[Clause, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool an application lets a behavior call, with its risk class
    (:class:`lockgate.engine.tools.RiskClass` values)."""

    key: str
    risk: str
    version: int = 0
    deny: tuple[ToolDenial, ...] = ()
    budget: ToolBudget | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class MetricBinding:
    """Which behaviors a tracked metric is attributed to (the behaviors whose guardrails use
    it), and the context attribute whose value scopes its summaries to a cohort."""

    behaviors: tuple[str, ...]
    cohort: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one environment needs to evaluate its flags, at one version.

    ``broken`` holds flags and segments whose shape could not be decoded at all, keyed by
    their path prefix (``flags.f1``), with the problems found; they evaluate to
    ``MALFORMED_FLAG`` and make the snapshot fail validation.
    """

    project: str
    environment: str
    version: int
    flags: dict[str, Flag]
    segments: dict[str, Segment]
    broken: dict[str, tuple[Problem, ...]] = field(default_factory=dict)
    metrics: dict[str, MetricBinding] = field(default_factory=dict)
    """Tracked metrics by name: what ``track()`` attributes them to (docs/snapshot-format.md)."""
    tools: dict[str, ToolSpec] = field(default_factory=dict)
    """The project's registered tools by key (:mod:`lockgate.engine.tools`)."""
    tool_policy: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The project's overrides of the default tool tier policy, normalized."""

    @classmethod
    def empty(cls, project: str = "", environment: str = "") -> Snapshot:
        return cls(project=project, environment=environment, version=0, flags={}, segments={})
