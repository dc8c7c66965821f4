from __future__ import annotations

from collections.abc import Iterator

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
