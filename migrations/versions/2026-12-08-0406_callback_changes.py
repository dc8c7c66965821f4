"""callbacks: members change and cancel, helpline hours

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 04:06:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import BigId, UtcDateTime

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "callback_texts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("phone_index", sa.String(64), nullable=False),
        sa.Column("on_file", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("sent_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_callback_texts"),
    )
    op.create_index("ix_callback_texts_phone_sent", "callback_texts", ["phone_index", "sent_at"])
    op.create_index("ix_callback_texts_unknown_sent", "callback_texts", ["on_file", "sent_at"])
    # Open requests made without signing in move below every verified member's (urgent: 1 -> 4, the rest
    # 3 -> 5). One a supervisor raised by hand (urgent unset) keeps its band.
    op.execute("UPDATE callback_requests SET priority = 4 WHERE member_id IS NULL AND priority = 1 AND urgent "
               "AND status IN ('waiting', 'claimed')")
    op.execute("UPDATE callback_requests SET priority = 5 WHERE member_id IS NULL AND priority = 3 "
               "AND status IN ('waiting', 'claimed')")


def downgrade() -> None:
    op.execute("UPDATE callback_requests SET priority = 1 WHERE priority = 4")
    op.execute("UPDATE callback_requests SET priority = 3 WHERE priority = 5")
    op.drop_index("ix_callback_texts_unknown_sent", table_name="callback_texts")
    op.drop_index("ix_callback_texts_phone_sent", table_name="callback_texts")
    op.drop_table("callback_texts")
