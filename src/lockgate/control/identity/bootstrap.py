"""First start: make sure somebody can log in."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select

from lockgate.control.base import Services, system_caller
from lockgate.control.identity import credentials
from lockgate.control.identity.passwords import generate_password, hash_password
from lockgate.errors import InvalidInput
from lockgate.policy.changes import AuditAction
from lockgate.store.tables import users

__all__ = ["BootstrapResult", "ensure_admin"]

ADMIN_USERNAME = "admin"


@dataclass(frozen=True)
class BootstrapResult:
    """What was created; secrets are here once, to be printed once."""

    created: bool
    username: str = ADMIN_USERNAME
    password: str | None = None
    token: str | None = None
    used_configured_token: bool = False


def ensure_admin(svc: Services, configured_token: str = "") -> BootstrapResult:
    """Create the first administrator if there is none (idempotent)."""
    if configured_token and len(configured_token) < 16:
        raise InvalidInput("LOCKGATE_BOOTSTRAP_ADMIN_TOKEN must be at least 16 characters")
    caller = system_caller("bootstrap", source="system")
    with svc.change() as tx:
        if tx.conn.execute(select(users.c.id).where(users.c.is_admin.is_(True))).first():
            return BootstrapResult(created=False)
        password = None if configured_token else generate_password()
        result = tx.conn.execute(
            insert(users).values(
                username=ADMIN_USERNAME,
                display_name="Administrator",
                kind="human",
                password_hash=None if password is None else hash_password(password),
                is_admin=True,
                disabled=False,
                version=1,
                created_at=tx.now,
                updated_at=tx.now,
                created_by="bootstrap",
            )
        )
        user_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        if configured_token:
            prefix, value = credentials.bootstrap_prefix(configured_token), configured_token
        else:
            issued = credentials.new_secret("lgt")
            prefix, value = issued.prefix, issued.value
        credentials.insert_token(
            tx.conn,
            user_id=user_id,
            name="bootstrap admin token",
            prefix=prefix,
            secret_hash=credentials.hash_secret(value),
            now=tx.now,
            created_by="bootstrap",
        )
        tx.record(
            caller,
            {
                "action": AuditAction.USER_CREATED.value,
                "object_type": "user",
                "object_key": ADMIN_USERNAME,
                "after": {
                    "username": ADMIN_USERNAME,
                    "is_admin": True,
                    "token": "bootstrap admin token",
                },
                "reason": "first start: no administrator existed",
            },
        )
    return BootstrapResult(
        created=True,
        password=password,
        token=None if configured_token else value,
        used_configured_token=bool(configured_token),
    )
