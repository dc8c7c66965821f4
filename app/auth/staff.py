"""Staff management by admins: list, deactivate, change role or branch, reset a second factor, end sessions,
new links."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.auth import throttle
from app.auth.devices import forget_devices
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
    forget_devices(session, staff_id=user.id)
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


def reset_second_factor(session: Session, *, staff_id: int, actor: str, now: datetime | None = None) -> Invitation:
    """A lost authenticator: the second factor is cleared, no browser is trusted any more, their sessions end,
    and a one-time link is returned. Whoever opens it chooses the password and sees the new key, as at
    enrolment; the password alone never shows a key."""
    user = _get(session, staff_id)
    if not user.active:
        raise Conflict("This account is deactivated: let them sign in again first")
    user.totp_secret_enc = None
    user.totp_confirmed_at = None
    user.totp_last_step = None
    token = _issue_link(user, now=now or utcnow())
    throttle.unlock_account(session, email=user.email)
    forget_devices(session, staff_id=user.id)
    session.flush()
    audit_service.record(session, actor=actor, action="staff.second_factor_reset", subject=f"staff:{user.id}")
    end_sessions(session, staff_id=user.id, actor=actor, reason="second_factor_reset")
    return Invitation(user=user, token=token)


def new_enrolment_link(session: Session, *, staff_id: int, actor: str, now: datetime | None = None) -> Invitation:
    """A fresh one-time link for someone who has not finished setting up their sign-in (the old link stops
    working)."""
    user = _get(session, staff_id)
    if not user.active:
        raise Conflict("This account is deactivated")
    if user.enrolled:
        raise Conflict("This person has already set up their sign-in: reset their authenticator app instead")
    token = _issue_link(user, now=now or utcnow())
    session.flush()
    audit_service.record(session, actor=actor, action="staff.enrolment_link", subject=f"staff:{user.id}")
    return Invitation(user=user, token=token)


def set_staff_branch(session: Session, *, staff_id: int, branch_code: str | None, actor: str) -> StaffUser:
    """Set (or, with None or "", clear) the branch a person's pages are scoped to; audited, and their sessions
    end when it changes (what they may see changed). Raises NotFound for an unknown branch code."""
    from app.branches import service as branch_service

    user = _get(session, staff_id)
    branch_id = None
    if branch_code:
        found = branch_service.branches_by_code(session).get(branch_code.strip())
        if found is None:
            raise NotFound(f"There is no branch with the code {branch_code.strip()!r}")
        branch_id = found.id
    if user.branch_id == branch_id:
        return user
    before = user.branch_id
    user.branch_id = branch_id
    session.flush()
    audit_service.record(session, actor=actor, action="staff.branch_changed", subject=f"staff:{user.id}",
                         before=before, after=branch_id)
    end_sessions(session, staff_id=user.id, actor=actor, reason="branch_changed")
    return user
