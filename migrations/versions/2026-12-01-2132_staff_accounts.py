"""staff sign-in: lockout, enrolment, second factor; the audit chain keyed with PORTAL_AUDIT_KEY

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 21:32:00

The audit chain was plain SHA-256 until this revision. Upgrading re-hashes it with HMAC-SHA256 under
PORTAL_AUDIT_KEY, event by event, only as far as the old chain verifies: from the first broken link on,
rows are left as they were, so `portal audit verify` still names the same first broken event. The digest
functions are copied here (not imported) so that this revision keeps meaning what it meant.
"""

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from datetime import UTC

import sqlalchemy as sa
from alembic import op

from app.config import get_settings
from app.db import UtcDateTime

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
AUDIT_CHAIN_LOCK = 727_001

audit = sa.table(
    "audit_events",
    sa.column("id", sa.BigInteger), sa.column("occurred_at", UtcDateTime), sa.column("actor", sa.String),
    sa.column("action", sa.String), sa.column("subject", sa.String), sa.column("details", sa.JSON),
    sa.column("prev_hash", sa.String), sa.column("hash", sa.String),
)


def _body(prev: str, row: sa.Row) -> bytes:
    return json.dumps([prev, row.occurred_at.astimezone(UTC).isoformat(), row.actor, row.action, row.subject,
                       row.details], sort_keys=True, separators=(",", ":"), default=str).encode()


def _plain(prev: str, row: sa.Row) -> str:
    return hashlib.sha256(_body(prev, row)).hexdigest()


def _keyed(prev: str, row: sa.Row) -> str:
    key = get_settings().AUDIT_KEY.get_secret_value().encode()
    return hmac.new(key, _body(prev, row), hashlib.sha256).hexdigest()


def _rehash(old: Callable[[str, sa.Row], str], new: Callable[[str, sa.Row], str]) -> None:
    """Re-hash the chain from `old` to `new` up to (not including) its first broken link."""
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_CHAIN_LOCK})
    old_prev, new_prev, last = GENESIS, GENESIS, 0
    while True:
        rows = conn.execute(sa.select(audit).where(audit.c.id > last).order_by(audit.c.id).limit(2000)).all()
        if not rows:
            return
        updates = []
        for row in rows:
            if row.prev_hash != old_prev or not hmac.compare_digest(old(old_prev, row), row.hash):
                break
            new_hash = new(new_prev, row)
            updates.append({"row_id": row.id, "new_prev": new_prev, "new_hash": new_hash})
            old_prev, new_prev, last = row.hash, new_hash, row.id
        if updates:
            conn.execute(audit.update().where(audit.c.id == sa.bindparam("row_id"))
                         .values(prev_hash=sa.bindparam("new_prev"), hash=sa.bindparam("new_hash")), updates)
        if len(updates) < len(rows):
            return


def upgrade() -> None:
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.alter_column('password_hash', existing_type=sa.String(length=200), nullable=True)
        batch_op.alter_column('totp_secret_enc', existing_type=sa.Text(), nullable=True)
        batch_op.add_column(sa.Column('totp_confirmed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('enrolment_token_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('enrolment_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_staff_users_enrolment_token_hash'), ['enrolment_token_hash'])
    # Accounts made before this revision were given their TOTP secret when they were created.
    op.execute("UPDATE staff_users SET totp_confirmed_at = created_at WHERE totp_secret_enc IS NOT NULL")
    op.create_table('login_throttles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=10), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=True),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_throttles')),
    sa.UniqueConstraint('scope', 'key', name=op.f('uq_login_throttles_scope_key'))
    )
    _rehash(_plain, _keyed)


def downgrade() -> None:
    _rehash(_keyed, _plain)
    op.drop_table('login_throttles')
    op.execute("DELETE FROM staff_users WHERE password_hash IS NULL OR totp_secret_enc IS NULL")
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_staff_users_enrolment_token_hash'), type_='unique')
        batch_op.drop_column('enrolment_expires_at')
        batch_op.drop_column('enrolment_token_hash')
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_confirmed_at')
        batch_op.alter_column('totp_secret_enc', existing_type=sa.Text(), nullable=False)
        batch_op.alter_column('password_hash', existing_type=sa.String(length=200), nullable=False)
