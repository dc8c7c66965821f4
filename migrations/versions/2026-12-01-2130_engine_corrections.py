"""campaign state and delivery accounting corrections

A member with no address on a channel (or a suppressed one) gets no delivery row any more: a
campaign_skips row says so instead. Deliveries planned that way by earlier versions (failed at once,
never attempted) become skips. Deliveries get an index for counting them by channel and status.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_PLANNED_AS_FAILED = ("status = 'failed' AND attempts = 0 AND sent_at IS NULL"
                      " AND error_code IN ('no_contact', 'suppressed')")


def upgrade() -> None:
    op.create_table(
        'campaign_skips',
        sa.Column('id', BIG, nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('member_id', BIG, nullable=False),
        sa.Column('branch_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=10), nullable=False),
        sa.Column('reason', sa.String(length=20), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_skips_campaign_id_campaigns'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_campaign_skips_member_id_members'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_skips')),
        sa.UniqueConstraint('campaign_id', 'member_id', 'channel',
                            name=op.f('uq_campaign_skips_campaign_id_member_id_channel')),
    )
    with op.batch_alter_table('campaign_skips', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_skips_member_id'), ['member_id'], unique=False)
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_campaign_status', ['campaign_id', 'channel', 'status'], unique=False)
    op.execute(
        "INSERT INTO campaign_skips (campaign_id, member_id, branch_id, channel, reason, created_at) "
        "SELECT campaign_id, member_id, branch_id, channel, "
        "CASE error_code WHEN 'no_contact' THEN 'no_address' ELSE 'suppressed' END, created_at "
        f"FROM deliveries WHERE {_PLANNED_AS_FAILED}")
    op.execute(f"UPDATE deliveries SET fallback_of_id = NULL WHERE fallback_of_id IN "
               f"(SELECT id FROM deliveries WHERE {_PLANNED_AS_FAILED})")
    op.execute(f"DELETE FROM deliveries WHERE {_PLANNED_AS_FAILED}")


def downgrade() -> None:
    # The skipped members are not turned back into failed deliveries: they had no reference code, and
    # the earlier version counted them as failures, which is what this revision corrects.
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_campaign_status')
    with op.batch_alter_table('campaign_skips', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_skips_member_id'))
    op.drop_table('campaign_skips')
