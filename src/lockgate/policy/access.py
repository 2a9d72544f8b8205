"""Authorization, decided in one place.

A principal holds role grants per project, optionally narrowed to one environment. Its
role for an object is the highest grant that covers it; an API token can narrow its
owner's authority further to one project and a maximum role. System administrators hold
every role everywhere (unless their token narrows them).

``decide`` answers one question — may this principal do this action here? — with one of
three outcomes, so that transports can hide objects of projects the caller cannot see
(404) while telling callers who can see them what they lack (403).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum

__all__ = ["Action", "Decision", "Grant", "Principal", "Role", "decide", "role_for"]


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Role.VIEWER: 1, Role.EDITOR: 2, Role.APPROVER: 3, Role.ADMIN: 4}


class Action(Enum):
    """What a request does, with the role it needs and whether it is per environment."""

    READ = (Role.VIEWER, False)
    READ_ENVIRONMENT = (Role.VIEWER, True)
    WRITE_PROJECT_OBJECT = (Role.EDITOR, False)  # flag definitions, segments
    WRITE_ENVIRONMENT_CONFIG = (Role.EDITOR, True)  # a flag's configuration in one env
    APPROVE = (Role.APPROVER, True)
    ADMIN_PROJECT = (Role.ADMIN, False)  # environments, members, SDK keys
    ADMIN_ENVIRONMENT = (Role.ADMIN, True)

    @property
    def role(self) -> Role:
        return self.value[0]

    @property
    def per_environment(self) -> bool:
        return self.value[1]


class Decision(StrEnum):
    ALLOW = "allow"
    FORBID = "forbid"  # the project is visible, the role is not enough -> 403
    HIDE = "hide"  # the project is not visible at all -> 404


@dataclass(frozen=True, slots=True)
class Grant:
    project_id: int
    role: Role
    environment_id: int | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user, acting directly or through an API token."""

    user_id: int
    name: str
    is_admin: bool = False
    grants: tuple[Grant, ...] = ()
    token_id: int | None = None
    token_project_id: int | None = None
    token_max_role: Role | None = None
    kind: str = "human"
    token_kind: str | None = None  # standard | automation, when acting through a token
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def actor_type(self) -> str:
        return "token" if self.token_id is not None else "user"

    @property
    def is_automation(self) -> bool:
        """Acting through an automation token: may read, plan and propose, never approve."""
        return self.token_kind == "automation"  # noqa: S105 - a token kind

    def sees_project(self, project_id: int) -> bool:
        if self.token_project_id is not None and self.token_project_id != project_id:
            return False
        return self.is_admin or any(g.project_id == project_id for g in self.grants)

    @property
    def is_system_admin(self) -> bool:
        """Full administrator, not narrowed by a token."""
        return (
            self.is_admin
            and self.token_project_id is None
            and self.token_max_role
            in (
                None,
                Role.ADMIN,
            )
        )


def role_for(principal: Principal, project_id: int, environment_id: int | None) -> Role | None:
    """The principal's effective role on a project (``environment_id=None``) or environment."""
    if not principal.sees_project(project_id):
        return None
    if principal.is_admin:
        best: Role | None = Role.ADMIN
    else:
        covering = [
            g.role
            for g in principal.grants
            if g.project_id == project_id
            and (g.environment_id is None or g.environment_id == environment_id)
        ]
        # Seeing a project through an environment grant gives read access to the project.
        best = max(covering, key=lambda r: r.rank) if covering else Role.VIEWER
    cap = principal.token_max_role
    if best is not None and cap is not None and cap.rank < best.rank:
        best = cap
    return best


def decide(
    principal: Principal, action: Action, project_id: int, environment_id: int | None = None
) -> Decision:
    if not principal.sees_project(project_id):
        return Decision.HIDE
    scope = environment_id if action.per_environment else None
    role = role_for(principal, project_id, scope)
    if role is not None and role.rank >= action.role.rank:
        return Decision.ALLOW
    return Decision.FORBID
