"""Failed sign-ins back off, then lock for a while: per account (the address typed) and per client address.

Keys are keyed hashes, so the table holds neither addresses nor IPs, and an address with no account is
throttled exactly like one with an account (its answers must not differ).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.auth.models import LoginThrottle
from app.auth.repository import ThrottleRepository
from app.config import get_settings
from app.members.pii import keyring

ACCOUNT = "account"
CLIENT = "client"


@dataclass(frozen=True)
class Keys:
    account: str
    client: str


def keys_for(*, email: str, client: str) -> Keys:
    ring = keyring()
    return Keys(account=ring.blind_index(email.strip().lower(), kind="staff.login"),
                client=ring.blind_index(client, kind="staff.client"))


def _limits(scope: str) -> tuple[int, int]:
    s = get_settings()
    return ((s.LOGIN_BACKOFF_AFTER, s.LOGIN_LOCK_AFTER) if scope == ACCOUNT
            else (s.LOGIN_CLIENT_BACKOFF_AFTER, s.LOGIN_CLIENT_LOCK_AFTER))


def _held(row: LoginThrottle | None, now: datetime) -> bool:
    if row is None:
        return False
    return any(t is not None and t > now for t in (row.locked_until, row.not_before))


def held_back(session: Session, *, keys: Keys, now: datetime) -> bool:
    """Whether the account or the client is locked or still inside a back-off delay."""
    repo = ThrottleRepository(session)
    return _held(repo.find(ACCOUNT, keys.account), now) or _held(repo.find(CLIENT, keys.client), now)


def record_failure(session: Session, *, keys: Keys, now: datetime) -> list[str]:
    """Count one failure on both keys; returns the scopes this failure has just locked."""
    settings = get_settings()
    window = timedelta(minutes=settings.LOGIN_FAILURE_WINDOW_MINUTES)
    locked = []
    repo = ThrottleRepository(session)
    for scope, key in ((ACCOUNT, keys.account), (CLIENT, keys.client)):
        row = repo.lock_or_create(scope, key)
        if row.last_failure_at is None or now - row.last_failure_at > window:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        backoff_after, lock_after = _limits(scope)
        if row.failures >= lock_after:
            if row.locked_until is None or row.locked_until <= now:
                locked.append(scope)
            row.locked_until = now + timedelta(minutes=settings.LOGIN_LOCK_MINUTES)
            row.failures = 0
        elif row.failures >= backoff_after:
            # Doubling delays: 2 s, 4 s, 8 s ... never longer than the lock itself.
            delay = min(settings.LOGIN_BACKOFF_BASE_SECONDS * 2 ** (row.failures - backoff_after),
                        settings.LOGIN_LOCK_MINUTES * 60)
            row.not_before = now + timedelta(seconds=delay)
    session.flush()
    return locked


def clear_account(session: Session, *, keys: Keys) -> None:
    """A successful sign-in forgets the account's failures (not the client's: one good account must not
    let a client keep guessing at others)."""
    row = ThrottleRepository(session).find(ACCOUNT, keys.account)
    if row is not None:
        row.failures, row.not_before, row.locked_until = 0, None, None


def unlock_account(session: Session, *, email: str) -> None:
    """An admin lifts an account's lock (the person asked for help)."""
    row = ThrottleRepository(session).find(ACCOUNT, keyring().blind_index(email.strip().lower(), kind="staff.login"))
    if row is not None:
        row.failures, row.not_before, row.locked_until = 0, None, None
