"""Request bodies of the tool registry and the tool tier policy (docs/agents.md).

Clauses inside denials are checked by the engine, so their problems name the field
(``deny[0].clauses[1].op``) exactly as for flags.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lockgate.api.schemas import Body, Key, Reason

RiskClassName = Literal["read", "draft", "write", "external", "irreversible"]


class Budget(Body):
    calls: int = Field(ge=1, le=1_000_000, description="allowed calls per window")
    window: int = Field(ge=1, le=31 * 24 * 3600, description="the window, in seconds")
    per: str = Field(
        default="key",
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]*$",
        description="the context attribute whose values are counted apart",
    )


class Denial(Body):
    id: str = Key
    clauses: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=50,
        description="the audience, as flag rule clauses (ANDed); none: everyone",
    )
    description: str = Field(default="", max_length=2000)


class ToolCreate(Body):
    key: str = Key
    risk: RiskClassName = Field(description="read < draft < write < external < irreversible")
    description: str = Field(default="", max_length=2000)
    deny: list[Denial] = Field(default_factory=list, max_length=100)
    budget: Budget | None = None
    reason: str = Reason


class ToolUpdate(Body):
    risk: RiskClassName | None = None
    description: str | None = Field(default=None, max_length=2000)
    deny: list[Denial] | None = Field(default=None, max_length=100)
    budget: Budget | None = Field(default=None, description="null removes the budget")
    reason: str = Reason


class ToolDeny(Body):
    """Deny a tool to everyone (no clauses) or to one audience: a reduction, at once."""

    id: str = Field(
        default="everyone",
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
    )
    clauses: list[dict[str, Any]] = Field(default_factory=list, max_length=50)
    description: str = Field(default="", max_length=2000)
    reason: str = Reason


class ToolPolicyUpdate(Body):
    overrides: dict[str, Any] = Field(
        description='{"<mode>": {"<risk class>": "allow"|"deny"|"approval_required" or '
        '{"<risk tier>": outcome}}}; cells left out keep the default table'
    )
    reason: str = Reason
