"""alert triggers: secret URLs that external monitoring calls to apply a reduction

Revision ID: 0012
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.String(length=32)
    op.create_table(
        "alert_triggers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("flag", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("audience", sa.String(length=2000), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_alert_triggers_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_alert_triggers_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_triggers")),
        sa.UniqueConstraint("public_id", name=op.f("uq_alert_triggers_public_id")),
    )
    op.create_index("ix_alert_triggers_environment_id", "alert_triggers", ["environment_id"])
    op.create_table(
        "alert_trigger_firings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger_id", sa.Integer(), nullable=False),
        sa.Column("episode", sa.String(length=300), nullable=False),
        sa.Column("fired_at", ts, nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trigger_id"],
            ["alert_triggers.id"],
            name=op.f("fk_alert_trigger_firings_trigger_id_alert_triggers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_trigger_firings")),
        sa.UniqueConstraint("trigger_id", "episode", name="uq_alert_trigger_firings_episode"),
    )


def downgrade() -> None:
    op.drop_table("alert_trigger_firings")
    op.drop_index("ix_alert_triggers_environment_id", table_name="alert_triggers")
    op.drop_table("alert_triggers")
