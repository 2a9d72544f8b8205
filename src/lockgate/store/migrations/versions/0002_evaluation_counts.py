"""evaluation counts reported by SDKs (the aggregated decision log)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluation_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("flag", sa.String(length=128), nullable=False),
        sa.Column("variation", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("window_start", sa.String(length=32), nullable=False),
        sa.Column("window_end", sa.String(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sdk", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_evaluation_counts_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_counts")),
    )
    op.create_index(
        "ix_evaluation_counts_env_flag_window",
        "evaluation_counts",
        ["environment_id", "flag", "window_start"],
    )


def downgrade() -> None:
    op.drop_index("ix_evaluation_counts_env_flag_window", table_name="evaluation_counts")
    op.drop_table("evaluation_counts")
