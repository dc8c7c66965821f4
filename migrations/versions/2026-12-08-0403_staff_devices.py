"""staff sign-in: known devices (OWASP device cookies)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 04:03:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import UtcDateTime

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("last_used_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_users.id"], ondelete="CASCADE",
                                name="fk_staff_devices_staff_id_staff_users"),
        sa.PrimaryKeyConstraint("id", name="pk_staff_devices"),
        sa.UniqueConstraint("token_hash", name="uq_staff_devices_token_hash"),
    )
    op.create_index("ix_staff_devices_staff_id", "staff_devices", ["staff_id"])


def downgrade() -> None:
    op.drop_index("ix_staff_devices_staff_id", table_name="staff_devices")
    op.drop_table("staff_devices")
