"""Reading the audit trail: the events an auditor asks for, newest first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.audit.models import AuditEvent
from app.audit.repository import AuditRepository


def search(session: Session, *, actor: str | None = None, action: str | None = None, subject: str | None = None,
           since: datetime | None = None, limit: int = 50, until: datetime | None = None) -> list[AuditEvent]:
    """Events by this actor, of this action (`campaign.*` for a prefix), on this subject, since then (and
    before `until`)."""
    if actor and actor.startswith("staff:") and actor[6:].isdigit() and len(actor) <= 24:
        # A staff member is named by email in the trail; `staff:12` (their subject) finds them too.
        actor = audit_service.staff_actor(session, int(actor[6:]))
    return AuditRepository(session).newest(actor=actor, action=action, subject=subject, since=since,
                                           limit=max(1, limit), until=until)
