from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select, text

from app.audit.models import AuditEvent
from app.kit.repository import Repository

# Any constant: the transaction-scoped advisory lock that keeps the hash chain linear on PostgreSQL.
AUDIT_CHAIN_LOCK = 727_001


class AuditRepository(Repository[AuditEvent]):
    model = AuditEvent

    def lock_chain_and_get_last_hash(self) -> str | None:
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_CHAIN_LOCK})
        stmt = select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
        return self.session.execute(stmt).scalar_one_or_none()

    def iter_in_order(self, batch: int = 5000) -> Iterator[AuditEvent]:
        last = 0
        while True:
            rows = self.list(select(AuditEvent).where(AuditEvent.id > last).order_by(AuditEvent.id).limit(batch))
            if not rows:
                return
            yield from rows
            last = rows[-1].id

    def newest(self, *, actor: str | None, action: str | None, subject: str | None, since: datetime | None,
               limit: int, until: datetime | None = None) -> list[AuditEvent]:
        """Events matching every filter given, newest first; an action ending in `*` matches as a prefix."""
        stmt = select(AuditEvent)
        if actor:
            stmt = stmt.where(AuditEvent.actor == actor)
        if action and action.endswith("*"):
            stmt = stmt.where(AuditEvent.action.startswith(action.rstrip("*"), autoescape=True))
        elif action:
            stmt = stmt.where(AuditEvent.action == action)
        if subject:
            stmt = stmt.where(AuditEvent.subject == subject)
        if since is not None:
            stmt = stmt.where(AuditEvent.occurred_at >= since)
        if until is not None:
            stmt = stmt.where(AuditEvent.occurred_at < until)
        return list(self.list(stmt.order_by(AuditEvent.id.desc()).limit(limit)))
