"""Proposals get ids that are never reused; rules an LLM suggests wait for the person; sessions choose what
an LLM may see; every LLM request is kept.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("steps") as batch:
        batch.add_column(sa.Column("proposal", sa.String(32), nullable=True))
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("proposal", sa.String(32), nullable=True))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("llm_share", sa.String(16), nullable=True))
        batch.add_column(sa.Column("rule_suggestion", sa.JSON, nullable=True))
    op.create_table(
        "llm_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id"), nullable=False, index=True),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_steps_proposal", "steps", ["proposal"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_steps_proposal", "steps")
    op.drop_table("llm_requests")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("rule_suggestion")
        batch.drop_column("llm_share")
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("proposal")
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("proposal")
