"""Password and TOTP sign-in as the web and the command line both use it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.auth import service as auth_service
from app.auth.models import Role, StaffUser
from tests.auth.conftest import PASSWORD, code_at, now

CLIENT = "203.0.113.9"


def actions(session: Session, since: int = 0) -> list[str]:
    return list(session.execute(select(AuditEvent.action).where(AuditEvent.id > since).order_by(AuditEvent.id))
                .scalars())


def last_event_id(session: Session) -> int:
    return session.execute(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)).scalar() or 0


def sign_in(session: Session, email: str, password: str, code: str, *, client: str = CLIENT, at=None):  # type: ignore[no-untyped-def]
    return auth_service.authenticate(session, email=email, password=password, code=code, client=client, via="test",
                                     now=at)


def test_passwords_are_argon2id_and_the_secret_is_stored_encrypted(session: Session, make_staff: Callable) -> None:
    created = make_staff()
    row = session.get(StaffUser, created.user.id)
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash and created.totp_secret not in (row.totp_secret_enc or "")
    assert created.totp_uri.startswith("otpauth://totp/") and created.totp_secret in created.totp_uri


def test_password_and_current_code_sign_in_and_are_audited(session: Session, make_staff: Callable) -> None:
    created = make_staff()
    before = last_event_id(session)
    user = sign_in(session, "Pat@Example.org ", PASSWORD, code_at(created.totp_secret, now()))
    assert user is not None and user.id == created.user.id and user.last_login_at is not None
    assert actions(session, before) == ["staff.sign_in"]


def test_a_code_is_good_for_one_step_either_side_and_once_only(session: Session, make_staff: Callable) -> None:
    secret = make_staff().totp_secret
    t = now()
    assert sign_in(session, "pat@example.org", PASSWORD, code_at(secret, t, steps=-2), at=t) is None
    assert sign_in(session, "pat@example.org", PASSWORD, code_at(secret, t, steps=2), at=t) is None
    assert sign_in(session, "pat@example.org", PASSWORD, code_at(secret, t, steps=-1), at=t) is not None
    before = last_event_id(session)
    replay = code_at(secret, t, steps=-1)
    assert sign_in(session, "pat@example.org", PASSWORD, replay, at=t) is None, "a used code is refused"
    event = session.execute(select(AuditEvent).where(AuditEvent.id > before)).scalars().first()
    # A right code used before is no guess: refused and audited, not counted towards a lock.
    assert event.action == "staff.sign_in_refused" and event.details["reason"] == "code_reused"
    assert sign_in(session, "pat@example.org", PASSWORD, code_at(secret, t), at=t) is not None
    assert sign_in(session, "pat@example.org", PASSWORD, code_at(secret, t, steps=1), at=t) is not None
    assert sign_in(session, "pat@example.org", PASSWORD, code_at(secret, t), at=t) is None, "an earlier step too"


def test_unknown_address_wrong_password_and_wrong_code_are_refused_alike(session: Session,
                                                                          make_staff: Callable) -> None:
    secret = make_staff().totp_secret
    code = code_at(secret, now())
    before = last_event_id(session)
    assert sign_in(session, "nobody@example.org", PASSWORD, code) is None
    assert sign_in(session, "pat@example.org", "not the password", code) is None
    assert sign_in(session, "pat@example.org", PASSWORD, "000000" if code != "000000" else "111111") is None
    events = session.execute(select(AuditEvent).where(AuditEvent.id > before).order_by(AuditEvent.id)).scalars().all()
    assert [e.action for e in events] == ["staff.sign_in_failed"] * 3
    assert [e.details["step"] for e in events] == ["password", "password", "code"]
    assert all("example.org" not in str(e.details) + e.actor + e.subject for e in events), "no typed address kept"
    assert all(CLIENT not in str(e.details) for e in events), "no client address at rest"


def test_failures_back_off_then_lock_the_account_for_a_while(session: Session, make_staff: Callable,
                                                             tight_limits: None) -> None:
    secret = make_staff().totp_secret
    t = now()
    for _ in range(3):
        assert sign_in(session, "pat@example.org", "wrong password!", "123456", at=t) is None
    # Backing off: even the right password and code are refused for a couple of seconds...
    assert sign_in(session, "pat@example.org", PASSWORD, code_at(secret, t), at=t) is None
    t += timedelta(seconds=3)
    # ...then accepted again, and success forgets the failures.
    assert sign_in(session, "pat@example.org", PASSWORD, code_at(secret, t), at=t) is not None
    t += timedelta(seconds=31)
    before = last_event_id(session)
    for i in range(5):
        t += timedelta(seconds=2 ** i + 1)  # each attempt after its back-off delay
        assert sign_in(session, "pat@example.org", "wrong password!", "123456", at=t) is None
    assert "staff.locked" in actions(session, before)
    t += timedelta(minutes=14)
    assert sign_in(session, "pat@example.org", PASSWORD, code_at(secret, t), at=t) is None, "locked"
    assert actions(session, last_event_id(session) - 1)[-1] == "staff.sign_in_refused"
    t += timedelta(minutes=2)
    assert sign_in(session, "pat@example.org", PASSWORD, code_at(secret, t), at=t) is not None, "the lock ends"


def test_one_client_guessing_at_many_addresses_is_locked_out(session: Session, make_staff: Callable,
                                                             tight_limits: None) -> None:
    secret = make_staff().totp_secret
    t = now()
    for i in range(8):
        t += timedelta(seconds=70)
        assert sign_in(session, f"guess{i}@example.org", "password123456", "123456", at=t) is None
    t += timedelta(seconds=1)
    assert sign_in(session, "pat@example.org", PASSWORD, code_at(secret, t), at=t) is None, "this client is locked"
    assert sign_in(session, "pat@example.org", PASSWORD, code_at(secret, t), client="198.51.100.7", at=t) is not None


def test_a_client_guessing_from_many_ipv6_addresses_in_its_64_is_one_client(session: Session, make_staff: Callable,
                                                                             tight_limits: None) -> None:
    """One subscriber holds a whole IPv6 /64: changing the last 64 bits per attempt does not escape the lock."""
    secret = make_staff().totp_secret
    t = now()
    for i in range(8):
        t += timedelta(seconds=70)
        assert sign_in(session, f"guess{i}@example.org", "password123456", "123456", client=f"2001:db8:1:2::{i + 1:x}",
                       at=t) is None
    t += timedelta(seconds=1)
    assert sign_in(session, "pat@example.org", PASSWORD, code_at(secret, t), client="2001:db8:1:2:ffff::9",
                   at=t) is None, "the /64 is locked"
    assert sign_in(session, "pat@example.org", PASSWORD, code_at(secret, t), client="2001:db8:1:3::1",
                   at=t) is not None


def test_an_inactive_account_cannot_sign_in(session: Session, make_staff: Callable) -> None:
    created = make_staff(role=Role.AGENT)
    created.user.active = False
    assert sign_in(session, "pat@example.org", PASSWORD, code_at(created.totp_secret, now())) is None


def test_a_browser_that_signed_in_before_has_its_own_roomier_counter(session: Session, make_staff: Callable,
                                                                      tight_limits: None) -> None:
    from app.auth import devices

    created = make_staff()
    token = devices.remember_device(session, user=created.user, token=None)
    device = devices.known_device(session, token=token, email=" PAT@example.org")
    assert device is not None and devices.known_device(session, token=token, email="sam@example.org") is None
    t = now()

    def attempt(password: str, **where) -> bool:  # type: ignore[no-untyped-def]
        return auth_service.check_password(session, email="pat@example.org", password=password, client=CLIENT,
                                           now=t, **where) is not None

    for _ in range(5):  # tight_limits: an unknown browser would be locked after 5
        t += timedelta(minutes=2)
        assert not attempt("a wrong guess!!", device_id=device.id)
    t += timedelta(minutes=2)
    assert attempt(PASSWORD, device_id=device.id), "the person's own typos lock nobody out"
    for _ in range(20):  # LOGIN_DEVICE_LOCK_AFTER, each after its back-off (never longer than the lock)
        t += timedelta(minutes=16)
        attempt("a wrong guess!!", device_id=device.id)
    assert not attempt(PASSWORD, device_id=device.id), "this browser is locked for a while"
    assert auth_service.check_password(session, email="pat@example.org", password=PASSWORD, client="198.51.100.3",
                                       now=t) is not None, "the account is not"
