"""Previews: what a step at the gate would change, computed before the person is asked; steps count their runs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "previews",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id"), nullable=False, index=True),
        sa.Column("step_id", sa.Integer, sa.ForeignKey("steps.id"), nullable=False, index=True),
        sa.Column("proposal", sa.String(32), nullable=True, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("base_version", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("version", sa.String(32), nullable=True),
        sa.Column("blob", sa.String(64), nullable=True),
        sa.Column("n_rows", sa.Integer, nullable=True),
        sa.Column("n_columns", sa.Integer, nullable=True),
        sa.Column("profile", sa.JSON, nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("content", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    with op.batch_alter_table("steps") as batch:
        batch.add_column(sa.Column("runs", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("runs")
    op.drop_table("previews")
