"""Reading the audit trail: the events an auditor asks for, newest first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.audit.repository import AuditRepository


def search(session: Session, *, actor: str | None = None, action: str | None = None, subject: str | None = None,
           since: datetime | None = None, limit: int = 50, until: datetime | None = None) -> list[AuditEvent]:
    """Events by this actor, of this action (`campaign.*` for a prefix), on this subject, since then (and
    before `until`)."""
    return AuditRepository(session).newest(actor=actor, action=action, subject=subject, since=since,
                                           limit=max(1, limit), until=until)
