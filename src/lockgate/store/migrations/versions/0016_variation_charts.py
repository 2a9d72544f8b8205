"""charts per variation: guardrail results per 15-minute slot, evaluation counts per hour

``guardrail_results`` keeps each guardrail's last evaluation per slot (the cycle writes it);
``evaluation_hours`` sums evaluation counts per hour, filled here from the counts already
stored, then by every report of counts in the same transaction.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TS = sa.String(length=32)


def upgrade() -> None:
    op.create_table(
        "guardrail_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guardrail_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("evaluated_at", TS, nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("estimate", sa.Float(), nullable=True),
        sa.Column("low", sa.Float(), nullable=True),
        sa.Column("high", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("boundary", sa.Float(), nullable=True),
        sa.Column("scale", sa.Float(), nullable=True),
        sa.Column("arms", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["guardrail_id"], ["guardrails.id"],
            name=op.f("fk_guardrail_results_guardrail_id_guardrails"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardrail_results")),
        sa.UniqueConstraint(
            "guardrail_id", "slot", name=op.f("uq_guardrail_results_guardrail_id_slot")
        ),
    )  # fmt: skip

    op.create_table(
        "evaluation_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("flag", sa.String(length=128), nullable=False),
        sa.Column("hour", sa.String(length=13), nullable=False),
        sa.Column("variation", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"], ["environments.id"],
            name=op.f("fk_evaluation_hours_environment_id_environments"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_hours")),
        sa.UniqueConstraint(
            "environment_id", "flag", "hour", "variation", "reason",
            name=op.f("uq_evaluation_hours_environment_id_flag_hour_variation_reason"),
        ),
    )  # fmt: skip
    op.execute(
        "INSERT INTO evaluation_hours (environment_id, flag, hour, variation, reason, count) "
        "SELECT environment_id, flag, substr(window_start, 1, 13), coalesce(variation, ''), "
        "reason, sum(count) FROM evaluation_counts "
        "GROUP BY environment_id, flag, substr(window_start, 1, 13), coalesce(variation, ''), "
        "reason"
    )


def downgrade() -> None:
    op.drop_table("evaluation_hours")
    op.drop_table("guardrail_results")
