"""hardening: CSRF tokens stored as hashes; the audit signing keys, append-only

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_sessions = sa.table("sessions", sa.column("id", sa.Integer), sa.column("csrf_hash", sa.String(64)))


_SQLITE_APPEND_ONLY = [
    f"CREATE TRIGGER audit_signing_keys_no_{verb} BEFORE {verb.upper()} ON audit_signing_keys "
    "BEGIN SELECT RAISE(ABORT, 'audit_signing_keys is append-only'); END"
    for verb in ("update", "delete")
]
_PG_APPEND_ONLY = [
    "CREATE TRIGGER audit_signing_keys_append_only BEFORE UPDATE OR DELETE ON "
    "audit_signing_keys FOR EACH ROW EXECUTE FUNCTION lockgate_append_only()",
    "CREATE TRIGGER audit_signing_keys_no_truncate BEFORE TRUNCATE ON audit_signing_keys "
    "FOR EACH STATEMENT EXECUTE FUNCTION lockgate_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "audit_signing_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("public_key_pem", sa.Text(), nullable=False),
        sa.Column("added_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_audit_signing_keys")),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE_APPEND_ONLY if sqlite else _PG_APPEND_ONLY:
        op.execute(statement)
    with op.batch_alter_table("sessions") as batch:
        batch.alter_column("csrf_token", new_column_name="csrf_hash", existing_type=sa.String(64))
    # Sessions opened before the upgrade keep working: their tokens are hashed in place.
    conn = op.get_bind()
    rows = conn.execute(sa.select(_sessions.c.id, _sessions.c.csrf_hash)).all()
    for session_id, token in rows:
        digest = hashlib.sha256(token.encode()).hexdigest()
        conn.execute(
            sa.update(_sessions).where(_sessions.c.id == session_id).values(csrf_hash=digest)
        )


def downgrade() -> None:
    op.drop_table("audit_signing_keys")
    # A hash cannot be turned back into its token: sessions opened since end here.
    op.execute("DELETE FROM sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.alter_column("csrf_hash", new_column_name="csrf_token", existing_type=sa.String(64))
