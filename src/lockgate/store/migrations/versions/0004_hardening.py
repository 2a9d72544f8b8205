"""hardening: CSRF tokens stored as hashes

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


def upgrade() -> None:
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
    # A hash cannot be turned back into its token: sessions opened since end here.
    op.execute("DELETE FROM sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.alter_column("csrf_hash", new_column_name="csrf_token", existing_type=sa.String(64))
