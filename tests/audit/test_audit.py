from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.audit.models import AuditEvent


def test_chain_verifies_and_detects_tampering(session: Session) -> None:
    events = [audit_service.record(session, actor="test", action="thing.done", subject=f"x:{i}", n=i)
              for i in range(5)]
    assert events[1].prev_hash == events[0].hash
    report = audit_service.verify_chain(session)
    assert report.intact and report.events >= 5
    session.execute(update(AuditEvent).where(AuditEvent.id == events[2].id).values(details={"n": 99}))
    session.expire_all()
    broken = audit_service.verify_chain(session)
    assert broken.first_broken_id == events[2].id
