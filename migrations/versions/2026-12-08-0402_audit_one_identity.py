"""audit: one identity per staff member, verify checkpoints

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 04:02:00

Until this revision the helpline queue and refused pages named a staff member `staff:<id>` in the trail,
while everything else named them by email, so filtering by an email missed every queue action. Upgrading
relabels those events with the staff member's email and re-seals the chain under PORTAL_AUDIT_KEY from the
first relabelled event on, as revision 0005 did: only as far as the chain verifies, so `portal audit verify`
still names the same first broken event, and nothing past a broken link is laundered. An id with no staff
account keeps its label. It also adds the checkpoint /admin/audit verifies from.

Downgrading gives the events the old code wrote as `staff:<id>` that label back (by action), and re-seals.
The digest functions are copied here (not imported) so that this revision keeps meaning what it meant.
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

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
AUDIT_CHAIN_LOCK = 727_001
# What the code before this revision recorded with actor `staff:<id>` (the queue, refused pages, exports).
STAFF_ID_ACTIONS = ("callback.claimed", "callback.details_viewed", "callback.attempt", "callback.reassigned",
                    "callback.released", "callback.reprioritised", "access.refused", "audit.exported")

audit = sa.table(
    "audit_events",
    sa.column("id", sa.BigInteger), sa.column("occurred_at", UtcDateTime), sa.column("actor", sa.String),
    sa.column("action", sa.String), sa.column("subject", sa.String), sa.column("details", sa.JSON),
    sa.column("prev_hash", sa.String), sa.column("hash", sa.String),
)
staff = sa.table("staff_users", sa.column("id", sa.Integer), sa.column("email", sa.String))


def _digest(prev: str, occurred_at, actor: str, action: str, subject: str, details) -> str:  # type: ignore[no-untyped-def]
    body = json.dumps([prev, occurred_at.astimezone(UTC).isoformat(), actor, action, subject, details],
                      sort_keys=True, separators=(",", ":"), default=str).encode()
    key = get_settings().AUDIT_KEY.get_secret_value().encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def _relabel(new_actor: Callable[[sa.Row], str]) -> None:
    """Give each event `new_actor(row)` and re-seal the chain, up to (not including) its first broken link."""
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_CHAIN_LOCK})
    old_prev, new_prev, last = GENESIS, GENESIS, 0
    while True:
        rows = conn.execute(sa.select(audit).where(audit.c.id > last).order_by(audit.c.id).limit(2000)).all()
        if not rows:
            return
        updates, broken = [], False
        for row in rows:
            if row.prev_hash != old_prev or not hmac.compare_digest(
                    _digest(old_prev, row.occurred_at, row.actor, row.action, row.subject, row.details), row.hash):
                broken = True
                break
            actor = new_actor(row)
            new_hash = _digest(new_prev, row.occurred_at, actor, row.action, row.subject, row.details)
            if (actor, new_prev, new_hash) != (row.actor, row.prev_hash, row.hash):
                updates.append({"row_id": row.id, "new_actor": actor, "new_prev": new_prev, "new_hash": new_hash})
            old_prev, new_prev, last = row.hash, new_hash, row.id
        if updates:
            conn.execute(audit.update().where(audit.c.id == sa.bindparam("row_id"))
                         .values(actor=sa.bindparam("new_actor"), prev_hash=sa.bindparam("new_prev"),
                                 hash=sa.bindparam("new_hash")), updates)
        if broken:
            return


def _emails() -> dict[str, str]:
    return {f"staff:{i}": email for i, email in op.get_bind().execute(sa.select(staff.c.id, staff.c.email))}


def upgrade() -> None:
    op.create_table('audit_checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=False),
    sa.Column('event_hash', sa.String(length=64), nullable=False),
    sa.Column('events', sa.BigInteger(), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seal', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_checkpoints'))
    )
    emails = _emails()
    _relabel(lambda row: emails.get(row.actor, row.actor))


def downgrade() -> None:
    ids = {email: label for label, email in _emails().items()}
    _relabel(lambda row: ids.get(row.actor, row.actor) if row.action in STAFF_ID_ACTIONS
             and not (row.subject or "").startswith("cli ") else row.actor)
    op.drop_table('audit_checkpoints')
