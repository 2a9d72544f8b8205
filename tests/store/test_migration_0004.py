"""Migration 0004: sessions opened before it keep their CSRF token, now stored hashed."""

from __future__ import annotations

import hashlib

from sqlalchemy import text

from lockgate.store.db import Database
from lockgate.store.migrate import current_revision, upgrade


def test_plain_csrf_tokens_are_hashed_in_place(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database, "0003")
        with database.write() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (username, display_name, kind, is_admin, disabled,"
                    " version, created_at, updated_at, created_by)"
                    " VALUES ('alice', 'Alice', 'human', false, false, 1, 't', 't', 'admin')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO sessions (user_id, secret_hash, csrf_token, created_at,"
                    " expires_at) VALUES (1, 'h', 'plain-token', 't', 'u')"
                )
            )
        upgrade(database, "0004")
        assert current_revision(database) == "0004"
        with database.write() as conn:
            stored = conn.execute(text("SELECT csrf_hash FROM sessions")).scalar_one()
        assert stored == hashlib.sha256(b"plain-token").hexdigest()
    finally:
        database.dispose()
