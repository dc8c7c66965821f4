"""member checks: one answer for members and strangers

All checks for one identifier share its newest challenge; browsers' tokens move to check_tokens. Statuses
are only the web's own (live, locked): what the worker found stays in its columns.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 04:04:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import BigId, UtcDateTime

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "check_tokens",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("identifier_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_check_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_check_tokens_token_hash"),
    )
    op.create_index("ix_check_tokens_identifier_hash", "check_tokens", ["identifier_hash"])
    # Checks under way keep working: each challenge's browser token becomes a token of its identifier.
    op.execute("INSERT INTO check_tokens (token_hash, identifier_hash, created_at) "
               "SELECT token_hash, identifier_hash, created_at FROM verification_challenges ORDER BY id")
    with op.batch_alter_table("verification_challenges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sends_since", UtcDateTime, nullable=True))
        batch_op.add_column(sa.Column("asked_at", UtcDateTime, nullable=True))
        batch_op.drop_constraint("uq_verification_challenges_token_hash", type_="unique")
        batch_op.drop_column("token_hash")
    # A used or replaced code stops working; everything else the web had is live (or locked).
    op.execute("UPDATE verification_challenges SET code_hash = NULL WHERE status IN ('verified', 'superseded')")
    op.execute("UPDATE verification_challenges SET status = 'live' WHERE status <> 'locked'")
    op.execute("UPDATE verification_challenges SET sends_since = created_at")
    with op.batch_alter_table("verification_challenges", schema=None) as batch_op:
        batch_op.alter_column("sends_since", existing_type=UtcDateTime, nullable=False)
        batch_op.create_index("ix_verification_challenges_asked_at", ["asked_at"])


def downgrade() -> None:
    with op.batch_alter_table("verification_challenges", schema=None) as batch_op:
        batch_op.drop_index("ix_verification_challenges_asked_at")
        batch_op.add_column(sa.Column("token_hash", sa.String(64), nullable=True))
    # Browsers' checks cannot be told apart per challenge any more: they end (visitors start again).
    op.execute("UPDATE verification_challenges SET token_hash = 'ended-' || CAST(id AS VARCHAR(20))")
    op.execute("UPDATE verification_challenges SET status = CASE WHEN status = 'locked' THEN 'locked' "
               "WHEN code_hash IS NOT NULL AND member_id IS NOT NULL THEN 'sent' "
               "WHEN resolved_at IS NULL THEN 'pending' ELSE 'unmatched' END")
    with op.batch_alter_table("verification_challenges", schema=None) as batch_op:
        batch_op.alter_column("token_hash", existing_type=sa.String(64), nullable=False)
        batch_op.create_unique_constraint("uq_verification_challenges_token_hash", ["token_hash"])
        batch_op.drop_column("asked_at")
        batch_op.drop_column("sends_since")
    op.drop_index("ix_check_tokens_identifier_hash", table_name="check_tokens")
    op.drop_table("check_tokens")
