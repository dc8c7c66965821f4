"""/admin/audit verifies the chain from the last verified checkpoint, not from the start on every view;
`portal audit verify` still checks every event, and catches a change made before the checkpoint."""

from __future__ import annotations

import secrets
from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.audit.models import AuditCheckpoint, AuditEvent
from app.auth.models import StaffUser
from app.db import utcnow
from app.web.models import WebSession
from app.web.sessions import cookie_name, hash_token


def _chain(session: Session, n: int, start: int = 0) -> list[AuditEvent]:
    return [audit_service.record(session, actor="test", action="thing.done", subject=f"x:{i}", n=i)
            for i in range(start, start + n)]


def _tamper(session: Session, event: AuditEvent) -> None:
    session.execute(update(AuditEvent).where(AuditEvent.id == event.id).values(details={"n": 999}))
    session.expire_all()


def test_a_view_checks_only_the_events_after_the_checkpoint(session: Session) -> None:
    old = _chain(session, 5)
    full = audit_service.verify_chain(session)
    assert full.intact and full.checked_from == 0
    new = _chain(session, 3, start=5)
    report = audit_service.verify_from_checkpoint(session)
    assert report.intact and report.events == full.events + 3
    assert report.checked_from == old[-1].id and report.checkpoint_at is not None
    # The view moved the checkpoint on: the next view starts after the newest event.
    assert audit_service.verify_from_checkpoint(session).checked_from == new[-1].id

    # A change after the checkpoint is caught by the view...
    later = _chain(session, 2, start=8)
    _tamper(session, later[1])
    assert audit_service.verify_from_checkpoint(session).first_broken_id == later[1].id


def test_a_change_before_the_checkpoint_is_caught_by_the_full_verify(session: Session) -> None:
    events = _chain(session, 6)
    assert audit_service.verify_chain(session).intact
    _tamper(session, events[2])
    # The view trusts what was verified before its checkpoint (that is what makes it quick)...
    assert audit_service.verify_from_checkpoint(session).intact
    # ...and the command, which checks every event, names the change.
    assert audit_service.verify_chain(session).first_broken_id == events[2].id


def test_a_checkpoint_moved_without_the_key_is_ignored(session: Session) -> None:
    events = _chain(session, 4)
    assert audit_service.verify_chain(session).intact
    events += _chain(session, 2, start=4)
    _tamper(session, events[4])  # after the checkpoint; and someone moves the checkpoint past it, without the key
    session.execute(update(AuditCheckpoint).values(event_id=events[5].id, event_hash=events[5].hash))
    session.expire_all()
    report = audit_service.verify_from_checkpoint(session)
    assert report.first_broken_id == events[4].id and report.checked_from == 0


def test_an_edited_checkpoint_event_is_not_trusted(session: Session) -> None:
    events = _chain(session, 4)
    assert audit_service.verify_chain(session).intact
    _tamper(session, events[3])  # the very event the checkpoint names
    assert audit_service.verify_from_checkpoint(session).first_broken_id == events[3].id


def test_the_page_says_how_far_it_checked_and_where_the_full_check_is(app: FastAPI, session: Session) -> None:
    auditor = StaffUser(email="ian@audit.example.org", password_hash=None, role="auditor", active=True)
    session.add(auditor)
    session.flush()
    _chain(session, 3)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(WebSession(token_hash=hash_token(token), kind="staff", subject_id=auditor.id, created_at=now,
                           last_seen_at=now, expires_at=now + timedelta(hours=1)))
    session.flush()
    with TestClient(app, follow_redirects=False) as web:
        web.cookies.set(cookie_name(), token)
        first = web.get("/admin/audit")
        assert first.status_code == 200 and "The chain is intact" in first.text
        _chain(session, 2, start=3)
        second = web.get("/admin/audit")
        assert second.status_code == 200 and "The chain is intact" in second.text
        assert "were checked on" in second.text and "portal audit verify checks every event" in second.text
