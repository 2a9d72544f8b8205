"""signals: pre-aggregated metric summaries for guardrails

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_summaries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("flag", sa.String(length=128), nullable=False),
        sa.Column("variation", sa.String(length=128), nullable=False),
        sa.Column("metric", sa.String(length=128), nullable=False),
        sa.Column("cohort", sa.String(length=200), nullable=False),
        sa.Column("resolution", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sum", sa.Float(), nullable=False),
        sa.Column("sum_sq", sa.Float(), nullable=False),
        sa.Column("exposures", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_metric_summaries_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_summaries")),
        sa.UniqueConstraint(
            "environment_id",
            "flag",
            "metric",
            "variation",
            "cohort",
            "resolution",
            "bucket",
            name="uq_metric_summaries_row",
        ),
    )
    op.create_index(
        "ix_metric_summaries_environment_id_bucket",
        "metric_summaries",
        ["environment_id", "bucket"],
    )


def downgrade() -> None:
    op.drop_index("ix_metric_summaries_environment_id_bucket", table_name="metric_summaries")
    op.drop_table("metric_summaries")
