"""A session records the share of its rows held out to score the cleaning on, fixed when it starts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sessions", sa.Column("holdout", sa.Float, nullable=True))


def downgrade() -> None:
    op.drop_column("sessions", "holdout")
