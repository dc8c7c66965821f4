"""Staff management by admins: list, deactivate, change role, reset a second factor, end sessions, new links."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.auth import throttle
from app.auth.models import Role, StaffUser
from app.auth.repository import StaffRepository
from app.auth.service import Invitation, _issue_link
from app.db import utcnow
from app.errors import Conflict, NotFound


def list_staff(session: Session) -> Sequence[StaffUser]:
    """Every account, active ones first."""
    return StaffRepository(session).listing()


def _get(session: Session, staff_id: int) -> StaffUser:
    user = StaffRepository(session).get(staff_id)
    if user is None:
        raise NotFound("There is no such staff account")
    return user


def _keep_an_admin(session: Session, user: StaffUser) -> None:
    if user.active and user.role == Role.ADMIN.value and StaffRepository(session).active_admins() <= 1:
        raise Conflict("This is the only active admin: make another admin first")


def end_sessions(session: Session, *, staff_id: int, actor: str, keep_session_id: int | None = None,
                 reason: str = "ended_by_admin") -> int:
    """End every web session of this person (all but `keep_session_id`); returns how many ended."""
    from app.web.sessions import end_sessions_for_staff

    user = _get(session, staff_id)
    ended = end_sessions_for_staff(session, staff_id=user.id, keep_session_id=keep_session_id)
    audit_service.record(session, actor=actor, action="staff.sessions_ended", subject=f"staff:{user.id}",
                         sessions=ended, reason=reason)
    return ended


def deactivate(session: Session, *, staff_id: int, actor: str) -> StaffUser:
    """The person can no longer sign in; their sessions end and any enrolment link stops working."""
    user = _get(session, staff_id)
    if not user.active:
        return user
    _keep_an_admin(session, user)
    user.active = False
    user.enrolment_token_hash = user.enrolment_expires_at = None
    session.flush()
    audit_service.record(session, actor=actor, action="staff.deactivated", subject=f"staff:{user.id}")
    end_sessions(session, staff_id=user.id, actor=actor, reason="deactivated")
    return user


def reactivate(session: Session, *, staff_id: int, actor: str) -> StaffUser:
    """Let a deactivated person sign in again."""
    user = _get(session, staff_id)
    if not user.active:
        user.active = True
        audit_service.record(session, actor=actor, action="staff.reactivated", subject=f"staff:{user.id}")
    return user


def change_role(session: Session, *, staff_id: int, role: Role, actor: str) -> StaffUser:
    """A new role takes effect at the person's next sign-in: their current sessions end."""
    user = _get(session, staff_id)
    if user.role == role.value:
        return user
    if role is not Role.ADMIN:
        _keep_an_admin(session, user)
    before = user.role
    user.role = role.value
    session.flush()
    audit_service.record(session, actor=actor, action="staff.role_changed", subject=f"staff:{user.id}",
                         before=before, after=role.value)
    end_sessions(session, staff_id=user.id, actor=actor, reason="role_changed")
    return user


def reset_second_factor(session: Session, *, staff_id: int, actor: str) -> StaffUser:
    """The person enrols a new authenticator at their next sign-in (a lost phone); their sessions end."""
    user = _get(session, staff_id)
    user.totp_secret_enc = None
    user.totp_confirmed_at = None
    user.totp_last_step = None
    throttle.unlock_account(session, email=user.email)
    session.flush()
    audit_service.record(session, actor=actor, action="staff.second_factor_reset", subject=f"staff:{user.id}")
    end_sessions(session, staff_id=user.id, actor=actor, reason="second_factor_reset")
    return user


def new_enrolment_link(session: Session, *, staff_id: int, actor: str, now: datetime | None = None) -> Invitation:
    """A fresh one-time link for someone who has not chosen a password yet (the old link stops working)."""
    user = _get(session, staff_id)
    if not user.active:
        raise Conflict("This account is deactivated")
    if user.password_hash is not None:
        raise Conflict("This person has already chosen a password")
    token = _issue_link(user, now=now or utcnow())
    session.flush()
    audit_service.record(session, actor=actor, action="staff.enrolment_link", subject=f"staff:{user.id}")
    return Invitation(user=user, token=token)
