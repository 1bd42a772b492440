"""Sessions record which agents planned them and what they spent on the LLM.

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
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("agents", sa.String(128), nullable=False, server_default="rule-based"))
        batch.add_column(sa.Column("llm_usage", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("llm_usage")
        batch.drop_column("agents")
