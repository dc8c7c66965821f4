"""callback requests

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 21:36:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import BigId, UtcDateTime

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


OPEN = "status IN ('waiting', 'claimed')"


def upgrade() -> None:
    op.create_table(
        "callback_requests",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("reference", sa.String(12), nullable=False),
        sa.Column("member_id", BigId, sa.ForeignKey("members.id", ondelete="SET NULL",
                                                    name="fk_callback_requests_member_id_members"), nullable=True),
        sa.Column("name_enc", sa.Text(), nullable=False),
        sa.Column("phone_enc", sa.Text(), nullable=False),
        sa.Column("phone_index", sa.String(64), nullable=False),
        sa.Column("window_start", UtcDateTime, nullable=False),
        sa.Column("window_end", UtcDateTime, nullable=False),
        sa.Column("topic", sa.String(40), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("passphrase_enc", sa.Text(), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("due_at", UtcDateTime, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime, nullable=True),
        sa.Column("claimed_by", sa.Integer(), sa.ForeignKey("staff_users.id",
                                                            name="fk_callback_requests_claimed_by_staff_users"),
                  nullable=True),
        sa.Column("lease_until", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("closed_at", UtcDateTime, nullable=True),
        sa.Column("confirmed_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_callback_requests"),
        sa.UniqueConstraint("reference", name="uq_callback_requests_reference"),
    )
    op.create_index("ix_callback_requests_queue", "callback_requests", ["priority", "due_at"],
                    postgresql_where=sa.text("status = 'waiting'"), sqlite_where=sa.text("status = 'waiting'"))
    op.create_index("uq_callback_requests_open_phone", "callback_requests", ["phone_index"], unique=True,
                    postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))
    member_open = f"{OPEN} AND member_id IS NOT NULL"
    op.create_index("uq_callback_requests_open_member", "callback_requests", ["member_id"], unique=True,
                    postgresql_where=sa.text(member_open), sqlite_where=sa.text(member_open))


def downgrade() -> None:
    op.drop_index("uq_callback_requests_open_member", table_name="callback_requests")
    op.drop_index("uq_callback_requests_open_phone", table_name="callback_requests")
    op.drop_index("ix_callback_requests_queue", table_name="callback_requests")
    op.drop_table("callback_requests")
