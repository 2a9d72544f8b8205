"""Request bodies. Unknown and read-only fields (``id``, ``version``, ``created_by``…) are
refused with 422 naming the field, never applied."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lockgate.store.tables import MAX_INTEGER

Key = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
Tag = Annotated[str, Field(min_length=1, max_length=64)]
Reason = Field(
    default="",
    max_length=2000,
    description="why; required where the project's posture asks for it (by default for high and "
    "restricted behaviors and in protected environments)",
)


class Body(BaseModel):
    """A request body: unknown fields refused, and no coercion ("1" is not a number)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ProjectCreate(Body):
    key: str = Key
    name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)


class ProjectUpdate(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    reason: str = Reason


class EnvironmentCreate(Body):
    key: str = Key
    name: str = Field(default="", max_length=200)
    protected: bool = False
    development: bool = Field(
        default=False,
        description="a development environment (the postures' development class, unless protected)",
    )
    position: int | None = Field(default=None, ge=0, le=10_000)


class EnvironmentUpdate(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    protected: bool | None = None
    development: bool | None = None
    position: int | None = Field(default=None, ge=0, le=10_000)
    privacy: dict[str, Any] | None = Field(
        default=None,
        description='{"private_attributes": [name], "rules": {name: "drop"|"hash"|"keep"}}: '
        "context attributes whose values never leave applications, and how each attribute "
        "is recorded (docs/privacy.md); recording one more openly needs an approval",
    )
    reason: str = Reason


class PostureUpdate(Body):
    posture: dict[str, Any] = Field(
        description="per risk tier: {approvals: {development|standard|protected: 0-5 or "
        '"deny"}, reason: never|protected|always}; tiers and classes left out keep the defaults'
    )
    reason: str = Reason


RiskTier = Literal["low", "medium", "high", "restricted"]
Lifecycle = Literal["temporary", "permanent"]
Kind = Literal["boolean", "string", "number", "json", "mode"]

BehaviorKind = Literal[
    "ui_path",
    "backend_workflow",
    "model_route",
    "prompt",
    "tool_action",
    "data_movement",
    "permission_path",
    "integration",
]


class Variation(Body):
    key: str = Key
    value: Any = None
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)


class FlagCreate(Body):
    key: str = Key
    kind: Kind
    name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    owner: str = Field(default="", max_length=200)
    risk_tier: RiskTier = "low"
    lifecycle: Lifecycle = "temporary"
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    variations: list[Variation] | None = Field(default=None, min_length=1, max_length=100)
    client_visible: bool = False
    behavior_kind: BehaviorKind | None = None
    reason: str = Reason


class FlagUpdate(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    owner: str | None = Field(default=None, max_length=200)
    risk_tier: RiskTier | None = None
    lifecycle: Lifecycle | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)
    variations: list[Variation] | None = Field(default=None, min_length=1, max_length=100)
    client_visible: bool | None = None
    archived: bool | None = None
    behavior_kind: BehaviorKind | None = None
    reason: str = Reason


class FlagConfigUpdate(Body):
    """Fields to change in one environment; shapes are documented in docs/snapshot-format.md."""

    on: bool | None = None
    off_variation: str | None = Field(default=None, max_length=128)
    targets: list[dict[str, Any]] | None = Field(default=None, max_length=1000)
    rules: list[dict[str, Any]] | None = Field(default=None, max_length=1000)
    default: dict[str, Any] | None = None
    prerequisites: list[dict[str, Any]] | None = Field(default=None, max_length=100)
    bucket_by: str | None = Field(default=None, min_length=1, max_length=128)
    salt: str | None = Field(default=None, min_length=1, max_length=128)
    killed: bool | None = None
    exclusions: list[dict[str, Any]] | None = Field(default=None, max_length=100)
    reason: str = Reason


class Revert(Body):
    to_version: int = Field(ge=1, le=MAX_INTEGER)
    reason: str = Reason


def changes(body: BaseModel, *, keep_null: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields the client sent (``reason`` excluded), as plain JSON values."""
    sent = body.model_dump(exclude_unset=True, mode="json")
    sent.pop("reason", None)
    return {k: v for k, v in sent.items() if v is not None or k in keep_null}


class ContractSource(Body):
    """A contract file's text (YAML) and the name it is reported under."""

    source: str = Field(
        max_length=65_536, description="the contract file's text (YAML), at most 64 Ki characters"
    )
    file: str = Field(default="", max_length=300, description="file name used in messages")


class ContractPlan(ContractSource):
    environment: str | None = Field(
        default=None, max_length=128, description="plan this environment only"
    )
    reason: str = Reason


class ContractApply(ContractSource):
    reason: str = Field(
        default="",
        max_length=2000,
        description="why; default: the contract's file name and hash",
    )
