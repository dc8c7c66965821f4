"""one-off messages carry a reference

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 04:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The standing guidance for police email named the verify page by a second name; it has one name.
OLD_EN = ("Check any message that claims to be from us on our Verify a message page, and report "
          "suspicious email to your force's IT security team.")
NEW_EN = ("Check any message that claims to be from us on our Check a message is from us page, and report "
          "suspicious email to your force's IT security team.")
OLD_CY = ("Gwiriwch unrhyw neges sy'n honni ei bod gennym ni ar ein tudalen Gwirio "
          "neges, a rhowch wybod am e-bost amheus i dîm diogelwch TG eich llu.")
NEW_CY = ("Gwiriwch unrhyw neges sy'n honni ei bod gennym ni ar ein tudalen Gwirio bod neges gennym ni, "
          "a rhowch wybod am e-bost amheus i dîm diogelwch TG eich llu.")


def _replace(old: str, new: str, column: str) -> None:
    # Only where the text is still the seeded one: an operator's own words are kept.
    op.execute(sa.text(f"UPDATE data_categories SET {column} = replace({column}, :old, :new) "
                       f"WHERE code = 'police_email'").bindparams(old=old, new=new))


def upgrade() -> None:
    with op.batch_alter_table('transactional_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reference', sa.String(length=14), nullable=True))
        batch_op.add_column(sa.Column('language', sa.String(length=2), nullable=False, server_default='en'))
        batch_op.create_index('ix_transactional_messages_reference', ['reference'], unique=True)
    with op.batch_alter_table('transactional_messages', schema=None) as batch_op:
        batch_op.alter_column('language', server_default=None)
    _replace(OLD_EN, NEW_EN, "guidance")
    _replace(OLD_CY, NEW_CY, "guidance_cy")


def downgrade() -> None:
    _replace(NEW_EN, OLD_EN, "guidance")
    _replace(NEW_CY, OLD_CY, "guidance_cy")
    with op.batch_alter_table('transactional_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_transactional_messages_reference')
        batch_op.drop_column('language')
        batch_op.drop_column('reference')
