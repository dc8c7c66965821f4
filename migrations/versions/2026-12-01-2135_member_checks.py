"""member status checks: one-time codes, transactional messages

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 21:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import BigId, UtcDateTime

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


MOVING = "status IN ('queued', 'sending')"


def upgrade() -> None:
    op.create_table(
        "verification_challenges",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("identifier_hash", sa.String(64), nullable=False),
        sa.Column("identifier_enc", sa.Text(), nullable=True),
        sa.Column("member_id", BigId, sa.ForeignKey("members.id", ondelete="CASCADE",
                                                    name="fk_verification_challenges_member_id_members"),
                  nullable=True),
        sa.Column("channel", sa.String(10), nullable=True),
        sa.Column("code_hash", sa.String(64), nullable=True),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("last_sent_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("resolved_at", UtcDateTime, nullable=True),
        sa.Column("verified_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_verification_challenges"),
        sa.UniqueConstraint("token_hash", name="uq_verification_challenges_token_hash"),
    )
    op.create_index("ix_verification_challenges_identifier_hash", "verification_challenges", ["identifier_hash"])
    op.create_index("ix_verification_challenges_member_id", "verification_challenges", ["member_id"])
    op.create_table(
        "transactional_messages",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("to_enc", sa.Text(), nullable=False),
        sa.Column("subject_enc", sa.Text(), nullable=True),
        sa.Column("body_enc", sa.Text(), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime, nullable=False),
        sa.Column("lease_until", UtcDateTime, nullable=True),
        sa.Column("expires_at", UtcDateTime, nullable=True),
        sa.Column("provider_message_id", sa.String(100), nullable=True),
        sa.Column("error_code", sa.String(40), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("sent_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_transactional_messages"),
    )
    op.create_index("ix_transactional_messages_moving", "transactional_messages", ["status", "next_attempt_at"],
                    postgresql_where=sa.text(MOVING), sqlite_where=sa.text(MOVING))


def downgrade() -> None:
    op.drop_index("ix_transactional_messages_moving", table_name="transactional_messages")
    op.drop_table("transactional_messages")
    op.drop_index("ix_verification_challenges_member_id", table_name="verification_challenges")
    op.drop_index("ix_verification_challenges_identifier_hash", table_name="verification_challenges")
    op.drop_table("verification_challenges")
