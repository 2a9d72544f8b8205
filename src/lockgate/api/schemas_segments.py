"""Request bodies for segments, the audit log API and server-side evaluation.

Like :mod:`lockgate.api.schemas`, unknown and read-only fields are refused with 422 naming
the field. Clause shapes inside segment rules are checked by the engine, so their
problems name the exact field (``rules[0].clauses[1].op``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from lockgate.api.schemas import Body, Key, Reason

__all__ = [
    "MAX_MEMBERS",
    "NO_NUL",
    "EvaluateRequest",
    "EvaluationType",
    "SegmentCreate",
    "SegmentUpdate",
]

MAX_MEMBERS = 10_000
"""Most keys a segment may list in ``included`` (and, separately, in ``excluded``)."""

NO_NUL = r"^[^\x00]*$"  # text columns cannot hold NUL bytes on PostgreSQL
Member = Annotated[str, Field(min_length=1, max_length=256)]
Members = list[Member]
Rules = list[dict[str, Any]]
RULES_DOC = "ordered rules {id, clauses}; a context matching any rule is in the segment"


class SegmentCreate(Body):
    key: str = Key
    name: str = Field(default="", max_length=200, pattern=NO_NUL)
    description: str = Field(default="", max_length=2000, pattern=NO_NUL)
    attribute: str = Field(default="key", min_length=1, max_length=128, pattern=NO_NUL)
    included: Members = Field(default_factory=list, max_length=MAX_MEMBERS)
    excluded: Members = Field(default_factory=list, max_length=MAX_MEMBERS)
    rules: Rules = Field(default_factory=list, max_length=1000, description=RULES_DOC)
    reason: str = Reason


class SegmentUpdate(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NO_NUL)
    description: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)
    attribute: str | None = Field(default=None, min_length=1, max_length=128, pattern=NO_NUL)
    included: Members | None = Field(default=None, max_length=MAX_MEMBERS)
    excluded: Members | None = Field(default=None, max_length=MAX_MEMBERS)
    rules: Rules | None = Field(default=None, max_length=1000, description=RULES_DOC)
    reason: str = Reason


EvaluationType = Literal["any", "boolean", "string", "number", "json", "mode"]


class EvaluateRequest(Body):
    flag: str = Field(min_length=1, max_length=128, description="the flag's key")
    context: dict[str, Any] = Field(description="the evaluation context: a JSON object")
    default: Any = Field(default=None, description="served (with an error code) on any error")
    type: EvaluationType = Field(
        default="any", description="the kind the caller expects; another kind is TYPE_MISMATCH"
    )
