"""Request bodies of the identity and access endpoints (users, members, sessions, tokens,
SDK keys). Unknown fields are refused with 422 naming the field."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from lockgate.api.schemas import Body, Reason

RoleName = Literal["viewer", "editor", "approver", "admin"]
NO_NUL = r"^[^\x00]*$"  # text columns cannot hold NUL bytes on PostgreSQL
KEY = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
Username = Field(min_length=1, max_length=128)
Password = Field(min_length=1, max_length=1024)


class UserCreate(Body):
    username: str = Username
    display_name: str = Field(default="", max_length=200, pattern=NO_NUL)
    kind: Literal["human", "service"] = "human"
    password: str | None = Field(
        default=None, max_length=1024, description="12+ characters; required for humans"
    )
    is_admin: bool = False
    reason: str = Reason


class UserUpdate(Body):
    display_name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NO_NUL)
    disabled: bool | None = None
    is_admin: bool | None = None
    reason: str = Reason


class PasswordChange(Body):
    current_password: str = Password
    new_password: str = Field(max_length=1024, description="12+ characters")


class Login(Body):
    username: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    password: str = Password


class MemberGrant(Body):
    role: RoleName
    environment: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=KEY,
        description="an environment key to grant the role there only; null for the project",
    )
    reason: str = Reason


class TokenCreate(Body):
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    project: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=KEY,
        description="limit the token to one project",
    )
    max_role: RoleName | None = Field(default=None, description="limit the token to this role")
    kind: Literal["standard", "automation"] = Field(
        default="standard",
        description="automation: for CI and coding agents — reads, plans and proposes changes, "
        "applies directly only what the posture allows directly, never approves",
    )
    expires_at: datetime | None = Field(
        default=None, strict=False, description="ISO 8601 text; UTC if it has no offset"
    )
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)
    user: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="a service account to create the token for (system administrators)",
    )
    reason: str = Reason


class SdkKeyCreate(Body):
    kind: Literal["server", "client"]
    name: str = Field(
        default="", max_length=200, pattern=NO_NUL, description="defaults to '<kind> key'"
    )
    reason: str = Reason


__all__ = [
    "Login",
    "MemberGrant",
    "PasswordChange",
    "RoleName",
    "SdkKeyCreate",
    "TokenCreate",
    "UserCreate",
    "UserUpdate",
]
