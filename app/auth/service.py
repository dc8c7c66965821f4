"""Staff accounts: argon2id passwords and TOTP secrets encrypted at rest."""

from __future__ import annotations

from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.auth.models import Role, StaffUser
from app.auth.repository import StaffRepository
from app.errors import AppError, Conflict
from app.members.pii import keyring

_hasher = PasswordHasher()
TOTP_CONTEXT = b"staff.totp"
MIN_PASSWORD = 12


class WeakPassword(AppError):
    status_code = 422


@dataclass(frozen=True)
class NewStaff:
    user: StaffUser
    totp_uri: str


def create_staff(
    session: Session, *, email: str, role: Role, password: str, actor: str, branch_id: int | None = None
) -> NewStaff:
    """Create a staff account; the TOTP enrolment URI is returned once and never stored in clear."""
    repo = StaffRepository(session)
    if repo.by_email(email):
        raise Conflict(f"a staff account for {email} already exists")
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"passwords must be at least {MIN_PASSWORD} characters")
    secret = pyotp.random_base32()
    user = repo.add(
        StaffUser(email=email.lower(), role=role.value, password_hash=_hasher.hash(password),
                  totp_secret_enc=keyring().encrypt(secret, context=TOTP_CONTEXT), branch_id=branch_id, active=True),
        flush=True,
    )
    audit_service.record(session, actor=actor, action="staff.create", subject=f"staff:{user.id}", role=role.value)
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="Breach portal")
    return NewStaff(user=user, totp_uri=uri)


def staff_exists(session: Session, *, email: str) -> bool:
    """Whether an account exists for this address."""
    return StaffRepository(session).by_email(email) is not None


def totp_secret(user: StaffUser) -> str:
    return keyring().decrypt(user.totp_secret_enc, context=TOTP_CONTEXT)


def active_staff(session: Session, email: str) -> StaffUser | None:
    """The active account for this address, if any."""
    user = StaffRepository(session).by_email(email.strip().lower())
    return user if user is not None and user.active else None


def staff_email(session: Session, staff_id: int | None) -> str | None:
    user = StaffRepository(session).get(staff_id) if staff_id is not None else None
    return user.email if user else None
