"""New accounts: a one-time enrolment link, the person's own password, then their own authenticator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.auth import service as auth_service
from app.auth import staff as staff_service
from app.auth.models import Role, StaffUser
from app.errors import Conflict
from tests.auth.conftest import code_at, now

CLIENT = "203.0.113.10"
NEW_PASSWORD = "a long pass phrase of mine"


def test_an_enrolment_link_works_until_the_second_factor_is_set_up_and_is_stored_hashed(session: Session) -> None:
    invite = auth_service.invite_staff(session, email="new@example.org", role=Role.AGENT, actor="admin@example.org")
    row = session.get(StaffUser, invite.user.id)
    assert row.password_hash is None and invite.token not in (row.enrolment_token_hash or "")
    assert invite.url.endswith(f"/staff/enrol/{invite.token}") and len(invite.token) >= 40
    assert auth_service.enrolment_account(session, token=invite.token).id == row.id
    with pytest.raises(auth_service.WeakPassword):
        auth_service.complete_enrolment(session, token=invite.token, password="short")
    user = auth_service.complete_enrolment(session, token=invite.token, password=NEW_PASSWORD)
    # A browser closed before the second factor was set up: the link opens again until that is done.
    assert auth_service.enrolment_account(session, token=invite.token).id == row.id
    auth_service.complete_enrolment(session, token=invite.token, password=NEW_PASSWORD + " again")
    secret = auth_service.pending_totp_secret(session, user=user)
    assert auth_service.confirm_totp(session, user=user, code=code_at(secret, now()), client=CLIENT)
    assert auth_service.enrolment_account(session, token=invite.token) is None
    with pytest.raises(Conflict, match="already been used"):
        auth_service.complete_enrolment(session, token=invite.token, password=NEW_PASSWORD)


def test_an_enrolment_link_expires(session: Session) -> None:
    invite = auth_service.invite_staff(session, email="late@example.org", role=Role.AGENT, actor="test")
    later = now() + timedelta(hours=73)
    assert auth_service.enrolment_account(session, token=invite.token, now=later) is None
    with pytest.raises(Conflict):
        auth_service.complete_enrolment(session, token=invite.token, password=NEW_PASSWORD, now=later)
    fresh = staff_service.new_enrolment_link(session, staff_id=invite.user.id, actor="test", now=later)
    assert auth_service.enrolment_account(session, token=invite.token, now=later) is None, "the old link is dead"
    assert auth_service.enrolment_account(session, token=fresh.token, now=later) is not None


def test_first_sign_in_enrols_the_second_factor_with_a_code(session: Session) -> None:
    invite = auth_service.invite_staff(session, email="new@example.org", role=Role.AGENT, actor="test")
    user = auth_service.complete_enrolment(session, token=invite.token, password=NEW_PASSWORD)
    assert not user.enrolled
    # The password alone leads nowhere until the second factor is set up through the link's browser.
    assert auth_service.check_password(session, email="new@example.org", password=NEW_PASSWORD,
                                       client="198.51.100.1") is None
    # The command line cannot sign in an account that has no second factor yet.
    assert auth_service.authenticate(session, email="new@example.org", password=NEW_PASSWORD, code="123456",
                                     client="198.51.100.2", via="cli") is None
    secret = auth_service.pending_totp_secret(session, user=user)
    assert auth_service.pending_totp_secret(session, user=user) == secret, "a reload shows the same QR code"
    assert not auth_service.confirm_totp(session, user=user, code="000000" if code_at(secret, now()) != "000000"
                                         else "111111", client=CLIENT)
    assert auth_service.confirm_totp(session, user=user, code=code_at(secret, now()), client=CLIENT)
    assert user.enrolled
    signed_in = auth_service.authenticate(session, email="new@example.org", password=NEW_PASSWORD,
                                          code=code_at(secret, now(), steps=1), client=CLIENT, via="cli")
    assert signed_in is not None
    recorded = set(session.execute(select(AuditEvent.action).where(AuditEvent.subject == f"staff:{user.id}"))
                   .scalars())
    assert {"staff.invite", "staff.password_set", "staff.totp_enrolled", "staff.sign_in"} <= recorded


def test_admins_deactivate_re_role_and_reset_a_second_factor(session: Session, make_staff: Callable) -> None:
    make_staff("boss@example.org", Role.ADMIN)
    agent = make_staff("agent1@example.org", Role.AGENT)
    staff_service.change_role(session, staff_id=agent.user.id, role=Role.SUPERVISOR, actor="boss@example.org")
    assert agent.user.role == "supervisor"
    staff_service.reset_second_factor(session, staff_id=agent.user.id, actor="boss@example.org")
    assert not agent.user.enrolled and agent.user.totp_secret_enc is None
    staff_service.deactivate(session, staff_id=agent.user.id, actor="boss@example.org")
    assert auth_service.check_password(session, email="agent1@example.org", password="correct horse battery",
                                       client=CLIENT) is None
    events = session.execute(select(AuditEvent).where(AuditEvent.subject == f"staff:{agent.user.id}")
                             .order_by(AuditEvent.id)).scalars().all()
    changed = next(e for e in events if e.action == "staff.role_changed")
    assert changed.actor == "boss@example.org" and changed.details == {"before": "agent", "after": "supervisor"}
    assert {"staff.second_factor_reset", "staff.deactivated", "staff.sessions_ended"} <= {e.action for e in events}
    assert [s.email for s in staff_service.list_staff(session)][-1] == "agent1@example.org", "inactive last"


def test_the_last_active_admin_cannot_be_removed(session: Session, make_staff: Callable) -> None:
    only = make_staff("only@example.org", Role.ADMIN)
    with pytest.raises(Conflict, match="only active admin"):
        staff_service.deactivate(session, staff_id=only.user.id, actor="only@example.org")
    with pytest.raises(Conflict, match="only active admin"):
        staff_service.change_role(session, staff_id=only.user.id, role=Role.AUDITOR, actor="only@example.org")
    assert auth_service.active_admin_exists(session)
