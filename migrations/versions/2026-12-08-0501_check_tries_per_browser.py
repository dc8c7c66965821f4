"""lookup: wrong tries counted per browser, and a larger budget per code across browsers

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08 05:01:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Which code of its challenge a code was (a new code starts every browser's tries again).
    with op.batch_alter_table("verification_challenges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("code_round", sa.Integer(), nullable=False, server_default=sa.text("0")))
    # A browser's tries on its challenge's code of round `tries_round`.
    with op.batch_alter_table("check_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tries", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch_op.add_column(sa.Column("tries_round", sa.Integer(), nullable=False, server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("check_tokens", schema=None) as batch_op:
        batch_op.drop_column("tries_round")
        batch_op.drop_column("tries")
    with op.batch_alter_table("verification_challenges", schema=None) as batch_op:
        batch_op.drop_column("code_round")
