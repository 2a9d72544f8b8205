"""Request bodies for webhook subscriptions (unknown fields refused with 422, like every body)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lockgate.api.schemas import Body, Key, Reason
from lockgate.api.schemas_segments import NO_NUL

__all__ = ["ReplayRequest", "RotateRequest", "WebhookCreate", "WebhookUpdate"]

EventName = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)]
EnvironmentKey = Annotated[str, Field(min_length=1, max_length=128, pattern=NO_NUL)]
URL = Field(
    min_length=1,
    max_length=2000,
    pattern=NO_NUL,
    description="http(s) URL; private, loopback and link-local targets are refused",
)
EVENT_TYPES = "event types (docs/webhooks.md), or '*' for all"
ENVIRONMENTS = "environment keys to receive events of (empty: every environment)"


class WebhookCreate(Body):
    key: str = Key
    url: str = URL
    event_types: list[EventName] = Field(min_length=1, max_length=32, description=EVENT_TYPES)
    environments: list[EnvironmentKey] = Field(
        default_factory=list, max_length=100, description=ENVIRONMENTS
    )
    description: str = Field(default="", max_length=2000, pattern=NO_NUL)
    enabled: bool = True
    reason: str = Reason


class WebhookUpdate(Body):
    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        pattern=NO_NUL,
        description="http(s) URL; private, loopback and link-local targets are refused",
    )
    event_types: list[EventName] | None = Field(
        default=None, min_length=1, max_length=32, description=EVENT_TYPES
    )
    environments: list[EnvironmentKey] | None = Field(
        default=None, max_length=100, description=ENVIRONMENTS
    )
    description: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)
    enabled: bool | None = None
    reason: str = Reason


class RotateRequest(Body):
    reason: str = Reason


class ReplayRequest(Body):
    reason: str = Reason
