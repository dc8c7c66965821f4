"""one live callback claim per agent

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 04:01:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLAIMED = sa.text("status = 'claimed'")


def upgrade() -> None:
    # An agent holding several claims keeps the newest; the others go back to the queue at once.
    op.execute(
        "UPDATE callback_requests SET status = 'waiting', claimed_by = NULL, lease_until = NULL, "
        "claimed_at = NULL WHERE status = 'claimed' AND EXISTS (SELECT 1 FROM callback_requests AS newer "
        "WHERE newer.status = 'claimed' AND newer.claimed_by = callback_requests.claimed_by "
        "AND newer.id > callback_requests.id)")
    op.create_index('uq_callback_requests_one_claim_per_agent', 'callback_requests', ['claimed_by'], unique=True,
                    postgresql_where=CLAIMED, sqlite_where=CLAIMED)


def downgrade() -> None:
    op.drop_index('uq_callback_requests_one_claim_per_agent', table_name='callback_requests',
                  postgresql_where=CLAIMED, sqlite_where=CLAIMED)
