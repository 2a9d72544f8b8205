"""Credentials: API tokens, SDK keys and the principals they authenticate.

Secrets are random and long, so they are stored as SHA-256 hashes and looked up by a
public prefix; the full value is shown once, at creation. Passwords (low entropy) use
Argon2 instead (:mod:`lockgate.control.identity.users`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from lockgate.errors import Unauthenticated
from lockgate.policy.access import Grant, Principal, Role
from lockgate.store.tables import api_tokens, role_grants, users

__all__ = [
    "TOKEN_KINDS",
    "IssuedSecret",
    "PrincipalCache",
    "authenticate_token",
    "hash_secret",
    "load_principal",
    "new_secret",
    "parse_secret",
]

TOKEN_KINDS = {"lgt": "api token", "lgs": "server SDK key", "lgc": "client SDK key"}
_BOOT = "boot"


@dataclass(frozen=True)
class IssuedSecret:
    """A freshly generated credential: ``value`` is shown once and never stored."""

    kind: str
    prefix: str
    value: str
    secret_hash: str


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret(kind: str) -> IssuedSecret:
    """A new credential ``<kind>_<prefix>_<secret>`` (e.g. ``lgt_3f9a…_…``)."""
    prefix = secrets.token_hex(6)
    value = f"{kind}_{prefix}_{secrets.token_urlsafe(32)}"
    return IssuedSecret(kind, prefix, value, hash_secret(value))


def parse_secret(value: str) -> tuple[str, str] | None:
    """``(kind, prefix)`` of a lockgate credential, or ``None`` if it is not one."""
    parts = value.split("_", 2)
    if len(parts) != 3 or parts[0] not in TOKEN_KINDS or len(parts[1]) != 12:
        return None
    return parts[0], parts[1]


def bootstrap_prefix(value: str) -> str:
    """Lookup prefix of an operator-chosen bootstrap token (any string of 16+ characters)."""
    return _BOOT + hashlib.sha256(value.encode()).hexdigest()[:12]


def load_principal(conn: Connection, user_id: int, token: Any = None) -> Principal:
    user = conn.execute(select(users).where(users.c.id == user_id)).one()
    grants = tuple(
        Grant(project_id=g.project_id, role=Role(g.role), environment_id=g.environment_id)
        for g in conn.execute(select(role_grants).where(role_grants.c.user_id == user_id)).all()
    )
    return Principal(
        user_id=user.id,
        name=user.username,
        is_admin=user.is_admin,
        grants=grants,
        kind=user.kind,
        token_id=None if token is None else token.id,
        token_project_id=None if token is None else token.project_id,
        token_max_role=None if token is None or token.max_role is None else Role(token.max_role),
        token_kind=None if token is None else token.kind,
        token_expires_at=None if token is None else token.expires_at,
    )


def authenticate_token(conn: Connection, value: str, now: str) -> Principal:
    """The principal an API token acts for; raises :class:`Unauthenticated` otherwise."""
    parsed = parse_secret(value)
    if parsed is not None and parsed[0] != "lgt":
        raise Unauthenticated(
            f"a {TOKEN_KINDS[parsed[0]]} cannot call the management API; use an API token"
        )
    prefix = parsed[1] if parsed is not None else bootstrap_prefix(value)
    token = conn.execute(select(api_tokens).where(api_tokens.c.prefix == prefix)).first()
    if token is None or not hmac.compare_digest(token.secret_hash, hash_secret(value)):
        raise Unauthenticated("invalid API token")
    if token.revoked_at is not None:
        raise Unauthenticated("this API token has been revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthenticated("this API token has expired")
    user = conn.execute(select(users.c.disabled).where(users.c.id == token.user_id)).one()
    if user.disabled:
        raise Unauthenticated("the owner of this API token is disabled")
    return load_principal(conn, token.user_id, token)


def touch_token(conn: Connection, token_id: int, now: str) -> None:
    """Record the token's last use (at most about once a minute, to spare writes)."""
    conn.execute(
        update(api_tokens)
        .where(api_tokens.c.id == token_id)
        .where((api_tokens.c.last_used_at.is_(None)) | (api_tokens.c.last_used_at < now[:16]))
        .values(last_used_at=now)
    )


def insert_token(
    conn: Connection,
    *,
    user_id: int,
    name: str,
    prefix: str,
    secret_hash: str,
    now: str,
    created_by: str,
    project_id: int | None = None,
    max_role: str | None = None,
    expires_at: str | None = None,
    kind: str = "standard",
) -> int:
    result = conn.execute(
        insert(api_tokens).values(
            user_id=user_id,
            kind=kind,
            name=name,
            prefix=prefix,
            secret_hash=secret_hash,
            project_id=project_id,
            max_role=max_role,
            expires_at=expires_at,
            created_at=now,
            created_by=created_by,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


class PrincipalCache:
    """Principals of recently seen API tokens, for at most ``ttl`` seconds.

    Saves the token, user and role lookups on every request of a busy client. Any identity
    change committed in this process (a token, user or role written) empties it at once;
    on PostgreSQL, one committed on another replica empties it as soon as its notification
    arrives (:mod:`lockgate.delivery.pg_notify`), and within ``ttl`` anyway. Keys are the
    tokens' hashes.

    A principal read from the database before an emptying must not be cached after it:
    readers take :attr:`generation` before they read and hand it to :meth:`put`, which
    drops the principal if the cache was emptied meanwhile.
    """

    def __init__(self, ttl: float = 1.0, size: int = 4096) -> None:
        self.ttl = ttl
        self._size = size
        self._items: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        self.generation = 0
        """Incremented by every :meth:`clear`."""

    def get(self, token: str) -> Principal | None:
        key = hash_secret(token)
        with self._lock:
            item = self._items.get(key)
        if item is None or item[0] <= time.monotonic():
            return None
        return item[1]

    def put(self, token: str, principal: Principal, generation: int | None = None) -> None:
        """Cache ``principal``, unless the cache was emptied since ``generation`` was read."""
        key = hash_secret(token)
        with self._lock:
            if generation is not None and generation != self.generation:
                return
            if len(self._items) >= self._size:
                self._items.clear()
            self._items[key] = (time.monotonic() + self.ttl, principal)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._items.clear()
