"""Staff accounts and sign-in: argon2id passwords, TOTP with replay protection, back-off and lockout.

The web (two pages: password, then code) and the command line (both at once) use the same functions,
so they refuse the same things. A refused attempt is *returned*, not raised: its failure count and audit
event must commit with the request, and a raised error would roll them back.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.auth import metrics, passwords, throttle, totp
from app.auth.models import Role, StaffUser
from app.auth.passwords import WeakPassword
from app.auth.repository import StaffRepository
from app.config import get_settings
from app.db import utcnow
from app.errors import Conflict
from app.members.pii import keyring

__all__ = ["CODE_JUST_USED", "GENERIC_REFUSAL", "WeakPassword"]

TOTP_CONTEXT = b"staff.totp"
# One answer for an unknown address, a wrong password or code, an account not yet set up, and a lock.
GENERIC_REFUSAL = ("The email address, password or code is not right, or this account is locked for a while. "
                   "Check them and try again in a few minutes.")
# Said only to someone who gave the right password and a right code: not a guess, and not counted as one.
CODE_JUST_USED = ("This code was just used: wait for the next one in your authenticator app "
                  "(a new code every 30 seconds), then try again.")


@dataclass(frozen=True)
class NewStaff:
    user: StaffUser
    totp_secret: str
    totp_uri: str


def client_tag(client: str) -> str:
    """The client address as the audit trail keeps it: a keyed hash (no IPs at rest)."""
    return keyring().blind_index(client, kind="staff.client")[:16]


def _find(session: Session, email: str) -> StaffUser | None:
    return StaffRepository(session).by_email(email.strip().lower())


def totp_secret(user: StaffUser) -> str:
    if user.totp_secret_enc is None:
        raise Conflict("this account has no second factor yet")
    return keyring().decrypt(user.totp_secret_enc, context=TOTP_CONTEXT)


def _seal_secret(secret: str) -> str:
    return keyring().encrypt(secret, context=TOTP_CONTEXT)


# --- sign-in --------------------------------------------------------------------------------------------


def _keys(email: str, *, client: str, via: str, device_id: int | None) -> throttle.Keys:
    # The command line has no device cookie; only failures made from it hold it back (an outsider's lock
    # must not refuse stop-all).
    return throttle.keys_for(email=email, client=client, device_id=device_id, own_only=via == "cli")


def check_password(session: Session, *, email: str, password: str, client: str, via: str = "web",
                   device_id: int | None = None, now: datetime | None = None) -> StaffUser | None:
    """First factor. The enrolled account on success; None (recorded, audited) for every kind of refusal
    alike. `device_id`: a browser that has signed in as this person before (devices.known_device)."""
    now = now or utcnow()
    keys = _keys(email, client=client, via=via, device_id=device_id)
    user = _find(session, email)
    # The argon2 work is done in every case, so the time taken says nothing about the address.
    matches = passwords.verify_password(user.password_hash if user else None, password)
    usable = user is not None and user.active and user.password_hash is not None
    if throttle.held_back(session, keys=keys, now=now):
        audit_service.record(session, actor="anonymous", action="staff.sign_in_refused",
                             subject=f"staff:{user.id}" if user else "", reason="locked", via=via,
                             client=client_tag(client))
        metrics.count_failure("held_back")
        return None
    if not (matches and usable):
        _failed(session, keys=keys, user=user, step="password", via=via, client=client, now=now)
        return None
    assert user is not None and user.password_hash is not None
    if not user.enrolled:
        # Setting up a second factor starts only from a one-time link, never from the password alone.
        _failed(session, keys=keys, user=user, step="not_enrolled", via=via, client=client, now=now)
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return user


class CodeCheck(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    # A right code whose time step was used already: refused, but not a guess, so not counted.
    JUST_USED = "just_used"


def verify_code(session: Session, *, user: StaffUser, code: str, client: str, via: str = "web",
                device_id: int | None = None, now: datetime | None = None) -> CodeCheck:
    """Second factor for an enrolled account: a current code whose time step has not been used before."""
    now = now or utcnow()
    keys = _keys(user.email, client=client, via=via, device_id=device_id)
    if throttle.held_back(session, keys=keys, now=now) or not user.active:
        audit_service.record(session, actor="anonymous", action="staff.sign_in_refused", subject=f"staff:{user.id}",
                             reason="locked" if user.active else "inactive", via=via, client=client_tag(client))
        metrics.count_failure("held_back")
        return CodeCheck.REFUSED
    step = None
    if user.totp_confirmed_at is not None and user.totp_secret_enc is not None:
        step = totp.matching_step(totp_secret(user), code, at=now)
    if step is None:
        _failed(session, keys=keys, user=user, step="code", via=via, client=client, now=now)
        return CodeCheck.REFUSED
    if not StaffRepository(session).claim_totp_step(user.id, step):
        audit_service.record(session, actor="anonymous", action="staff.sign_in_refused", subject=f"staff:{user.id}",
                             reason="code_reused", via=via, client=client_tag(client))
        metrics.count_failure("code_reused")
        return CodeCheck.JUST_USED
    session.refresh(user)
    throttle.clear_after_success(session, keys=keys)
    user.last_login_at = now
    audit_service.record(session, actor=user.email, action="staff.sign_in", subject=f"staff:{user.id}", via=via,
                         client=client_tag(client))
    return CodeCheck.ACCEPTED


def check_code(session: Session, *, user: StaffUser, code: str, client: str, via: str = "web",
               device_id: int | None = None, now: datetime | None = None) -> bool:
    """Whether the second factor is accepted (see verify_code)."""
    return verify_code(session, user=user, code=code, client=client, via=via, device_id=device_id,
                       now=now) is CodeCheck.ACCEPTED


@dataclass(frozen=True)
class Proof:
    user: StaffUser | None
    code_just_used: bool = False


def prove(session: Session, *, email: str, password: str, code: str, client: str, via: str,
          now: datetime | None = None) -> Proof:
    """Password and current code at once (the command line); refusals are recorded and audited."""
    user = check_password(session, email=email, password=password, client=client, via=via, now=now)
    if user is None:
        return Proof(None)
    checked = verify_code(session, user=user, code=code, client=client, via=via, now=now)
    return Proof(user if checked is CodeCheck.ACCEPTED else None, code_just_used=checked is CodeCheck.JUST_USED)


def authenticate(session: Session, *, email: str, password: str, code: str, client: str, via: str,
                 now: datetime | None = None) -> StaffUser | None:
    """The account proved by password and current code at once; None for any refusal."""
    return prove(session, email=email, password=password, code=code, client=client, via=via, now=now).user


def _failed(session: Session, *, keys: throttle.Keys, user: StaffUser | None, step: str, via: str, client: str,
            now: datetime) -> None:
    subject = f"staff:{user.id}" if user else ""
    tag = client_tag(client)
    audit_service.record(session, actor="anonymous", action="staff.sign_in_failed", subject=subject, step=step,
                         via=via, client=tag)
    metrics.count_failure(step)
    minutes = get_settings().LOGIN_LOCK_MINUTES
    for scope in throttle.record_failure(session, keys=keys, now=now):
        audit_service.record(session, actor="system", action="staff.locked",
                             subject=subject if scope in (throttle.ACCOUNT, throttle.DEVICE, throttle.PAIR) else "",
                             scope=scope, client=tag, minutes=minutes)
        if scope in (throttle.ACCOUNT, throttle.DEVICE):
            metrics.raise_alert(scope=scope, subject=subject, client=tag, minutes=minutes)


# --- enrolment ------------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Invitation:
    user: StaffUser
    token: str

    @property
    def path(self) -> str:
        return f"/staff/enrol/{self.token}"

    @property
    def url(self) -> str:
        return get_settings().PUBLIC_BASE_URL.rstrip("/") + self.path


def _issue_link(user: StaffUser, *, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    user.enrolment_token_hash = _token_hash(token)
    user.enrolment_expires_at = now + timedelta(hours=get_settings().STAFF_ENROLMENT_HOURS)
    return token


def enrolment_account(session: Session, *, token: str, now: datetime | None = None) -> StaffUser | None:
    """The account an enrolment link belongs to, if the link is unused, unexpired and the account active."""
    if not token or len(token) > 100:
        return None
    user = StaffRepository(session).by_enrolment_token_hash(_token_hash(token))
    if user is None or not user.active or user.enrolment_expires_at is None:
        return None
    return user if user.enrolment_expires_at > (now or utcnow()) else None


def complete_enrolment(session: Session, *, token: str, password: str, now: datetime | None = None) -> StaffUser:
    """The person sets their own password through their link. Raises WeakPassword.

    The link stays good (until it expires) while the second factor is not yet set up, so someone whose browser
    closed between the two steps opens it again; confirming the second factor spends it."""
    user = enrolment_account(session, token=token, now=now)
    if user is None:
        raise Conflict("This link has expired or has already been used. Ask an administrator for a new one.")
    passwords.check_policy(password, email=user.email)
    user.password_hash = passwords.hash_password(password)
    audit_service.record(session, actor=user.email, action="staff.password_set", subject=f"staff:{user.id}",
                         via="enrolment_link")
    return user


def pending_totp_secret(session: Session, *, user: StaffUser) -> str:
    """The secret to enrol (made on first use, kept until confirmed so a reload shows the same QR code)."""
    if user.totp_confirmed_at is not None:
        raise Conflict("this account already has a second factor")
    if user.totp_secret_enc is None:
        user.totp_secret_enc = _seal_secret(totp.new_secret())
        session.flush()
    return totp_secret(user)


def confirm_totp(session: Session, *, user: StaffUser, code: str, client: str, now: datetime | None = None) -> bool:
    """Enrolment ends when the person types a code from their app; that also completes their sign-in."""
    now = now or utcnow()
    # Only the holder of the one-time link gets here: an outsider's lock on the account must not stop them.
    keys = throttle.keys_for(email=user.email, client=client, own_only=True)
    if throttle.held_back(session, keys=keys, now=now) or not user.active or user.totp_secret_enc is None:
        return False
    step = totp.matching_step(totp_secret(user), code, at=now)
    if step is None or not StaffRepository(session).claim_totp_step(user.id, step):
        _failed(session, keys=keys, user=user, step="enrolment_code", via="web", client=client, now=now)
        return False
    session.refresh(user)
    user.totp_confirmed_at = now
    user.last_login_at = now
    user.enrolment_token_hash = None  # the link is spent once the second factor is set up
    user.enrolment_expires_at = None
    throttle.clear_after_success(session, keys=keys)
    audit_service.record(session, actor=user.email, action="staff.totp_enrolled", subject=f"staff:{user.id}")
    audit_service.record(session, actor=user.email, action="staff.sign_in", subject=f"staff:{user.id}", via="web",
                         client=client_tag(client))
    return True


# --- accounts -------------------------------------------------------------------------------------------


def create_staff(
    session: Session, *, email: str, role: Role, password: str, actor: str, branch_id: int | None = None
) -> NewStaff:
    """An account whose holder typed their own password (the first admin, demo logins), enrolled at once:
    the TOTP secret is returned once and stored only encrypted."""
    email = email.strip().lower()
    repo = StaffRepository(session)
    if repo.by_email(email):
        raise Conflict(f"a staff account for {email} already exists")
    passwords.check_policy(password, email=email)
    secret = totp.new_secret()
    user = repo.add(
        StaffUser(email=email, role=role.value, password_hash=passwords.hash_password(password),
                  totp_secret_enc=_seal_secret(secret), totp_confirmed_at=utcnow(), branch_id=branch_id, active=True),
        flush=True,
    )
    audit_service.record(session, actor=actor, action="staff.create", subject=f"staff:{user.id}", role=role.value)
    return NewStaff(user=user, totp_secret=secret, totp_uri=totp.provisioning_uri(secret, user.email))


def invite_staff(session: Session, *, email: str, role: Role, actor: str, branch_id: int | None = None,
                 now: datetime | None = None) -> Invitation:
    """A new account with a one-time enrolment link: its holder chooses their own password and second factor."""
    email = email.strip().lower()
    repo = StaffRepository(session)
    if repo.by_email(email):
        raise Conflict(f"a staff account for {email} already exists")
    user = repo.add(StaffUser(email=email, role=role.value, branch_id=branch_id, active=True), flush=True)
    token = _issue_link(user, now=now or utcnow())
    session.flush()
    audit_service.record(session, actor=actor, action="staff.invite", subject=f"staff:{user.id}", role=role.value)
    return Invitation(user=user, token=token)


def staff_exists(session: Session, *, email: str) -> bool:
    """Whether an account exists for this address."""
    return _find(session, email) is not None


def active_staff(session: Session, email: str) -> StaffUser | None:
    """The active account for this address, if any."""
    user = _find(session, email)
    return user if user is not None and user.active else None


def staff_by_email(session: Session, email: str) -> StaffUser | None:
    """The account for this address, active or not."""
    return _find(session, email)


def staff_by_id(session: Session, staff_id: int) -> StaffUser | None:
    """The account with this id, active or not."""
    return StaffRepository(session).get(staff_id)


def staff_email(session: Session, staff_id: int | None) -> str | None:
    user = StaffRepository(session).get(staff_id) if staff_id is not None else None
    return user.email if user else None


def active_admin_exists(session: Session) -> bool:
    """Whether any active admin account exists (the first admin is created without a proved identity)."""
    return StaffRepository(session).active_admins() > 0
