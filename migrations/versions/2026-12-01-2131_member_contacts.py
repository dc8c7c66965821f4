"""member contact validity (SMS-capable phones)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:31:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing phones stay NULL ("not yet checked"): checking them needs the PII key, which a migration
    # does not hold. They are treated as SMS-capable, as before, until their member is imported again.
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_sms', sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_column('phone_sms')
