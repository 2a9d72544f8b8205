"""Evaluation results: value, variation, reason and error code."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = ["ErrorCode", "EvaluationDetail", "Reason"]


class Reason(StrEnum):
    """Why a value was served. Members equal their wire values."""

    OFF = "OFF"
    TARGET_MATCH = "TARGET_MATCH"
    RULE_MATCH = "RULE_MATCH"
    FALLTHROUGH = "FALLTHROUGH"
    SPLIT = "SPLIT"
    PREREQUISITE_FAILED = "PREREQUISITE_FAILED"
    KILLED = "KILLED"  # the kill switch: the fallback for everyone
    INCIDENT = "INCIDENT"  # an active incident covers the behavior: the fallback
    EXCLUDED = "EXCLUDED"  # a targeted rollback (its id is the rule id): the fallback
    ERROR = "ERROR"


class ErrorCode(StrEnum):
    """Why evaluation failed; names follow OpenFeature where it has one."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    MALFORMED_FLAG = "MALFORMED_FLAG"
    TARGETING_KEY_MISSING = "TARGETING_KEY_MISSING"
    INVALID_CONTEXT = "INVALID_CONTEXT"
    PROVIDER_NOT_READY = "PROVIDER_NOT_READY"
    GENERAL = "GENERAL"


class EvaluationDetail:
    """The outcome of one evaluation.

    Instances are immutable by convention and shared: the engine builds the result of each
    fixed serve once per snapshot, so the hot path allocates nothing. Treat ``value`` as
    read-only (JSON values are shared between calls).
    """

    __slots__ = ("error_code", "flag_version", "reason", "rule_id", "value", "variation")

    value: Any
    variation: str | None
    reason: Reason
    rule_id: str | None
    error_code: ErrorCode | None
    flag_version: int | None

    def __init__(
        self,
        value: Any,
        variation: str | None,
        reason: Reason,
        rule_id: str | None = None,
        error_code: ErrorCode | None = None,
        flag_version: int | None = None,
    ) -> None:
        self.value = value
        self.variation = variation
        self.reason = reason
        self.rule_id = rule_id
        self.error_code = error_code
        self.flag_version = flag_version

    @property
    def is_error(self) -> bool:
        return self.error_code is not None

    def with_default(self, default: Any) -> EvaluationDetail:
        """A copy serving the caller's ``default`` (used when no variation applies)."""
        return EvaluationDetail(
            default, None, self.reason, self.rule_id, self.error_code, self.flag_version
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "variation": self.variation,
            "reason": self.reason.value,
            "rule_id": self.rule_id,
            "error_code": None if self.error_code is None else self.error_code.value,
            "flag_version": self.flag_version,
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EvaluationDetail):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.variation, self.reason, self.rule_id, self.error_code))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"EvaluationDetail({fields})"


def error_detail(
    code: ErrorCode, default: Any, flag_version: int | None = None
) -> EvaluationDetail:
    """The result for a failed evaluation: the caller's default and the error code."""
    return EvaluationDetail(default, None, Reason.ERROR, None, code, flag_version)
