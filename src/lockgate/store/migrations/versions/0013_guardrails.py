"""guardrails: definitions, staged rollout plans, time-boxed cohort exclusions

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TS = sa.String(length=32)


def _owner_columns(table: str) -> list[sa.Column[int] | sa.ForeignKeyConstraint]:
    return [
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f(f"fk_{table}_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["environment_id"], ["environments.id"],
            name=op.f(f"fk_{table}_environment_id_environments"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["flag_id"], ["flags.id"], name=op.f(f"fk_{table}_flag_id_flags"), ondelete="CASCADE"
        ),
    ]  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "guardrails",
        sa.Column("id", sa.Integer(), nullable=False),
        *_owner_columns("guardrails"),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("evaluation", sa.JSON(), nullable=True),
        sa.Column("evaluated_at", TS, nullable=True),
        sa.Column("breached_at", TS, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardrails")),
        sa.UniqueConstraint(
            "flag_id",
            "environment_id",
            "key",
            name=op.f("uq_guardrails_flag_id_environment_id_key"),
        ),
    )
    op.create_index("ix_guardrails_environment_id", "guardrails", ["environment_id"])
    op.create_table(
        "rollout_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        *_owner_columns("rollout_plans"),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("stage_started_at", TS, nullable=False),
        sa.Column("require_approval", sa.Boolean(), nullable=False),
        sa.Column("approval", sa.JSON(), nullable=False),
        sa.Column("last_step", sa.JSON(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_plans")),
        sa.UniqueConstraint(
            "flag_id", "environment_id", name=op.f("uq_rollout_plans_flag_id_environment_id")
        ),
    )
    op.create_table(
        "guardrail_exclusions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guardrail_id", sa.Integer(), nullable=False),
        sa.Column("cohort", sa.String(length=200), nullable=False),
        sa.Column("exclusion", sa.String(length=64), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["guardrail_id"], ["guardrails.id"],
            name=op.f("fk_guardrail_exclusions_guardrail_id_guardrails"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardrail_exclusions")),
        sa.UniqueConstraint(
            "guardrail_id", "exclusion",
            name=op.f("uq_guardrail_exclusions_guardrail_id_exclusion"),
        ),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("guardrail_exclusions")
    op.drop_table("rollout_plans")
    op.drop_index("ix_guardrails_environment_id", table_name="guardrails")
    op.drop_table("guardrails")
