"""runtime action approvals: requests from applications and the decisions on them

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.String(length=32)
    op.create_table(
        "runtime_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("behavior", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("private_attributes", sa.JSON(), nullable=False),
        sa.Column("served", sa.JSON(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("approvals_required", sa.Integer(), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("requester_id", sa.String(length=64), nullable=False),
        sa.Column("requester_name", sa.String(length=200), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.Column("expires_at", ts, nullable=False),
        sa.Column("decided_at", ts, nullable=True),
        sa.Column("outcome_reason", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_runtime_approvals_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_runtime_approvals_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runtime_approvals")),
        sa.UniqueConstraint(
            "environment_id",
            "idempotency_key",
            name=op.f("uq_runtime_approvals_environment_id_idempotency_key"),
        ),
    )
    op.create_index(
        "ix_runtime_approvals_project_state", "runtime_approvals", ["project_id", "state"]
    )
    op.create_index(
        "ix_runtime_approvals_state_expires", "runtime_approvals", ["state", "expires_at"]
    )
    op.create_table(
        "runtime_approval_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("runtime_approval_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.ForeignKeyConstraint(
            ["runtime_approval_id"],
            ["runtime_approvals.id"],
            name=op.f("fk_runtime_approval_events_runtime_approval_id_runtime_approvals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runtime_approval_events")),
    )
    op.create_index(
        "ix_runtime_approval_events_request", "runtime_approval_events", ["runtime_approval_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_runtime_approval_events_request", table_name="runtime_approval_events")
    op.drop_table("runtime_approval_events")
    op.drop_index("ix_runtime_approvals_state_expires", table_name="runtime_approvals")
    op.drop_index("ix_runtime_approvals_project_state", table_name="runtime_approvals")
    op.drop_table("runtime_approvals")
