"""guardrail results: each guardrail's last evaluation per 15-minute slot, for its charts

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


def downgrade() -> None:
    op.drop_table("guardrail_results")
