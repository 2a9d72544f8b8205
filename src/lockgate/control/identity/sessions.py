"""Dashboard login sessions: password login, session lookup, logout.

A session is a random secret held by the browser in an HttpOnly cookie; the server keeps
only its SHA-256 hash, the user, the SHA-256 hash of its CSRF token and the expiry.
Logins are throttled per (client address, claimed username) and per claimed username
(:mod:`lockgate.control.identity.login_limits`); every login, failed login and the
first refusal of each lock-out is audited. Unknown users, wrong passwords, disabled users and
service accounts all get the same answer after the same amount of hashing work.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from lockgate.control.base import Caller, Services, iso
from lockgate.control.identity import credentials, users
from lockgate.control.identity.login_limits import LockedOut, LoginLimiter, login_keys
from lockgate.control.identity.passwords import verify_password
from lockgate.errors import Unauthenticated
from lockgate.policy.access import Principal
from lockgate.policy.changes import AuditAction
from lockgate.store.tables import sessions
from lockgate.store.tables import users as users_table

__all__ = ["LoginResult", "authenticate_session", "login", "logout"]

BAD_CREDENTIALS = "invalid username or password"


@dataclass(frozen=True)
class LoginResult:
    """A new session; ``secret`` goes into the cookie once and is never stored."""

    user: dict[str, Any]
    secret: str
    csrf_token: str
    expires_at: str


def login(
    svc: Services,
    limiter: LoginLimiter,
    *,
    username: str,
    password: str,
    address: str,
    ttl_hours: int,
    request_id: str,
    source: str = "dashboard",
) -> LoginResult:
    """Check a username and password and open a session; raise on failure or lock-out."""
    keys = login_keys(username, address)
    try:
        attempt = limiter.begin(keys)
    except LockedOut as exc:
        if exc.first:
            _record_refusal(svc, exc, username, address, request_id, source)
        raise
    with svc.view() as conn:
        row = conn.execute(select(users_table).where(users_table.c.username == username)).first()
    stored = None if row is None else row.password_hash
    good = verify_password(stored, password)  # hashes even when there is nothing to verify
    if row is None or not good or row.disabled or row.kind != "human":
        _record_failure(svc, limiter, username, address, request_id, source)
        raise Unauthenticated(BAD_CREDENTIALS)
    limiter.succeeded(attempt, clear=keys[:1])
    users.rehash_if_needed(svc, row.id, row.password_hash, password)
    return _open_session(svc, row.id, address, ttl_hours, request_id, source)


def _record_failure(
    svc: Services,
    limiter: LoginLimiter,
    username: str,
    address: str,
    request_id: str,
    source: str,
) -> None:
    anonymous = Caller(None, request_id, source=source, system_name="anonymous")
    locked = any(limiter.locked_out(key) for key in login_keys(username, address))
    with svc.change() as tx:
        tx.record(
            anonymous,
            {
                "action": AuditAction.AUTH_LOGIN_FAILED.value,
                "object_type": "user",
                "object_key": username[:200],
                "evidence": {
                    "client_address": address,
                    "claimed_username": username[:200],
                    "locked_out": locked,
                },
            },
        )


def _record_refusal(
    svc: Services, refusal: LockedOut, username: str, address: str, request_id: str, source: str
) -> None:
    """Audit a lock-out's first refused attempt (later ones would only repeat it)."""
    anonymous = Caller(None, request_id, source=source, system_name="anonymous")
    with svc.change() as tx:
        tx.record(
            anonymous,
            {
                "action": AuditAction.AUTH_LOGIN_REFUSED.value,
                "object_type": "user",
                "object_key": username[:200],
                "evidence": {
                    "client_address": address,
                    "claimed_username": username[:200],
                    "locked": [key.split(":", 1)[0] for key in refusal.keys],
                    "retry_after": refusal.retry_after,
                },
            },
        )


def _open_session(
    svc: Services, user_id: int, address: str, ttl_hours: int, request_id: str, source: str
) -> LoginResult:
    secret = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    expires_at = iso(svc.clock() + timedelta(hours=ttl_hours))
    with svc.change() as tx:
        result = tx.conn.execute(
            insert(sessions).values(
                user_id=user_id,
                secret_hash=credentials.hash_secret(secret),
                csrf_hash=credentials.hash_secret(csrf_token),
                created_at=tx.now,
                expires_at=expires_at,
            )
        )
        session_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        principal = _session_principal(tx.conn, user_id, session_id)
        view = users.user_view(users.find_user(tx.conn, principal.name))
        tx.record(
            Caller(principal, request_id, source=source),
            {
                "action": AuditAction.AUTH_LOGIN.value,
                "object_type": "user",
                "object_key": principal.name,
                "evidence": {"client_address": address, "session_expires_at": expires_at},
            },
        )
    return LoginResult(view, secret, csrf_token, expires_at)


def _session_principal(conn: Connection, user_id: int, session_id: int) -> Principal:
    principal = credentials.load_principal(conn, user_id)
    return dataclasses.replace(principal, extra={"session_id": str(session_id)})


def authenticate_session(conn: Connection, secret: str, now: str) -> tuple[Principal, str]:
    """The principal of a live session and its CSRF token's hash (compare
    ``credentials.hash_secret`` of the token sent); raises :class:`Unauthenticated`."""
    row = conn.execute(
        select(sessions).where(sessions.c.secret_hash == credentials.hash_secret(secret))
    ).first()
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("your session has ended; log in again")
    if row.expires_at <= now:
        raise Unauthenticated("your session has expired; log in again")
    disabled = conn.execute(
        select(users_table.c.disabled).where(users_table.c.id == row.user_id)
    ).scalar_one()
    if disabled:
        raise Unauthenticated("your account is disabled")
    return _session_principal(conn, row.user_id, row.id), row.csrf_hash


def logout(svc: Services, caller: Caller) -> bool:
    """End the caller's session; False if the caller did not authenticate with one."""
    principal = caller.principal
    session_id = None if principal is None else principal.extra.get("session_id")
    if session_id is None:
        return False
    with svc.change() as tx:
        tx.conn.execute(
            update(sessions)
            .where(sessions.c.id == int(session_id), sessions.c.revoked_at.is_(None))
            .values(revoked_at=tx.now)
        )
        tx.record(
            caller,
            {
                "action": AuditAction.AUTH_LOGOUT.value,
                "object_type": "user",
                "object_key": caller.actor_name,
            },
        )
    return True
