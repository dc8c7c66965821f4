from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select, text, update

from app.audit.models import AuditCheckpoint, AuditEvent
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

    def iter_in_order(self, batch: int = 5000, *, after: int = 0) -> Iterator[AuditEvent]:
        last = after
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
            # Staff are named by their email, kept in lower case as typed at sign-in: Ann@ finds ann@.
            stmt = stmt.where(AuditEvent.actor == (actor.strip().lower() if "@" in actor else actor))
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


class CheckpointRepository(Repository[AuditCheckpoint]):
    model = AuditCheckpoint
    ROW = 1  # one checkpoint: how far the chain was last verified

    def current(self) -> AuditCheckpoint | None:
        return self.session.get(AuditCheckpoint, self.ROW)

    def advance(self, *, event_id: int, event_hash: str, events: int, seal: str, now: datetime) -> None:
        """Move the checkpoint forward to this event (never back: a slower check may finish later)."""
        values = {"event_id": event_id, "event_hash": event_hash, "events": events, "seal": seal,
                  "verified_at": now}
        found = self.current()
        if found is None:
            self.add(AuditCheckpoint(id=self.ROW, **values), flush=True)
            return
        self.session.execute(update(AuditCheckpoint).where(AuditCheckpoint.id == self.ROW,
                                                           AuditCheckpoint.event_id <= event_id).values(**values)
                             .execution_options(synchronize_session=False))
        self.session.expire(found)
