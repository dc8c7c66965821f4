"""helpline queue: claims, attempts, outcomes

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 21:37:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import BigId, UtcDateTime

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("callback_requests") as batch:
        batch.add_column(sa.Column("claimed_at", UtcDateTime, nullable=True))
        batch.add_column(sa.Column("closed_reason", sa.String(20), nullable=True))
    op.create_index("ix_callback_requests_leases", "callback_requests", ["lease_until"],
                    postgresql_where=sa.text("status = 'claimed'"), sqlite_where=sa.text("status = 'claimed'"))
    op.create_table(
        "callback_attempts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("request_id", BigId, sa.ForeignKey("callback_requests.id", ondelete="CASCADE",
                                                     name="fk_callback_attempts_request_id_callback_requests"),
                  nullable=False),
        sa.Column("staff_id", sa.Integer(), sa.ForeignKey("staff_users.id",
                                                          name="fk_callback_attempts_staff_id_staff_users"),
                  nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("notes_enc", sa.Text(), nullable=True),
        sa.Column("call_at", UtcDateTime, nullable=True),
        sa.Column("made_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_callback_attempts"),
    )
    op.create_index("ix_callback_attempts_request_id", "callback_attempts", ["request_id"])
    op.create_index("ix_callback_attempts_staff_made", "callback_attempts", ["staff_id", "made_at"])


def downgrade() -> None:
    op.drop_index("ix_callback_attempts_staff_made", table_name="callback_attempts")
    op.drop_index("ix_callback_attempts_request_id", table_name="callback_attempts")
    op.drop_table("callback_attempts")
    op.drop_index("ix_callback_requests_leases", table_name="callback_requests")
    with op.batch_alter_table("callback_requests") as batch:
        batch.drop_column("closed_reason")
        batch.drop_column("claimed_at")
