"""Running steps and the sessions being advanced name their runner and carry its heartbeat, so that a server
takes over only what a dead runner left.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("sessions", "steps"):
        op.add_column(table, sa.Column("runner", sa.String(128), nullable=True))
        op.add_column(table, sa.Column("heartbeat_at", sa.DateTime, nullable=True))


def downgrade() -> None:
    """Plain ALTER TABLE … DROP COLUMN (SQLite 3.35 and later): a batch copy would drop ``sessions``, which the
    foreign keys of ``steps`` refuse while there are rows."""
    for table in ("steps", "sessions"):
        op.drop_column(table, "heartbeat_at")
        op.drop_column(table, "runner")
