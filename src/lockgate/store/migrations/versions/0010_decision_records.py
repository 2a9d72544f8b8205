"""decision records and per-environment privacy settings

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.add_column(sa.Column("privacy", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("privacy_salt", sa.String(length=64), nullable=True))
    environments = sa.table("environments", sa.column("id", sa.Integer), sa.column("privacy_salt"))
    conn = op.get_bind()
    for (env_id,) in conn.execute(sa.select(environments.c.id)).all():
        conn.execute(
            environments.update()
            .where(environments.c.id == env_id)
            .values(privacy_salt=secrets.token_hex(32))
        )
    op.create_table(
        "decision_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("flag", sa.String(length=128), nullable=False),
        sa.Column("variation", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=True),
        sa.Column("context_key", sa.String(length=1024), nullable=True),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("redacted", sa.JSON(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("decided_at", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.String(length=32), nullable=False),
        sa.Column("sdk", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_decision_records_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_records")),
    )
    op.create_index(
        "ix_decision_records_env_decided",
        "decision_records",
        ["environment_id", "decided_at", "id"],
    )
    op.create_index(
        "ix_decision_records_env_subject", "decision_records", ["environment_id", "context_key"]
    )
    op.create_index("ix_decision_records_kind_decided", "decision_records", ["kind", "decided_at"])


def downgrade() -> None:
    op.drop_index("ix_decision_records_kind_decided", table_name="decision_records")
    op.drop_index("ix_decision_records_env_subject", table_name="decision_records")
    op.drop_index("ix_decision_records_env_decided", table_name="decision_records")
    op.drop_table("decision_records")
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("privacy_salt")
        batch.drop_column("privacy")
