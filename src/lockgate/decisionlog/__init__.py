"""The decision log's shared vocabulary: record kinds and the wire limits of a record
(docs/decisions.md). Standard library only: used by the SDK and by the server."""

from lockgate.decisionlog.kinds import (
    EVALUATION_KINDS,
    GUARDRAIL_EXCLUSION_PREFIX,
    LIMITS,
    DecisionKind,
    RecordLimits,
    evaluation_kind,
)

__all__ = [
    "EVALUATION_KINDS",
    "GUARDRAIL_EXCLUSION_PREFIX",
    "LIMITS",
    "DecisionKind",
    "RecordLimits",
    "evaluation_kind",
]
