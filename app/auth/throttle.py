"""Failed sign-ins slow and then lock whoever makes them, never the person they are aimed at.

Counters (rows of login_throttles, keyed by keyed hashes, so the table holds neither addresses nor IPs):
- `client`: every failure from one client address (whatever address was typed);
- `pair`: failures from one client against one typed address: back-off, then a lock of that client;
- `account`: failures against one typed address from browsers it has never signed in from: a lock of
  *those* browsers only (an address with no account is counted exactly like one with an account);
- `device`: failures from a browser that has signed in as the person before (OWASP's device cookies):
  its own, roomier counter; none of the others hold it back, so nobody can keep the person out of it.
The command line has no device cookie, but only failures made from it (its client and pair) hold it back;
the same goes for finishing set-up from a one-time link.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.auth.models import LoginThrottle
from app.auth.repository import ThrottleRepository
from app.config import get_settings
from app.kit.addresses import address_key
from app.members.pii import keyring

ACCOUNT = "account"
CLIENT = "client"
PAIR = "pair"
DEVICE = "device"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Keys:
    account: str
    client: str
    pair: str
    # A known device of the account typed: only its own counter applies.
    device_id: int | None = None
    # The command line, or a browser holding a set-up ticket from a one-time link: only its own failures
    # (client and pair) hold it back, never a lock caused from other addresses.
    own_only: bool = False

    def scopes(self) -> list[tuple[str, str]]:
        """The counters that hold this attempt back, and that its failure counts on."""
        if self.device_id is not None:
            return [(DEVICE, str(self.device_id))]
        own = [(CLIENT, self.client), (PAIR, self.pair)]
        return own if self.own_only else own + [(ACCOUNT, self.account)]


def account_key(email: str) -> str:
    return keyring().blind_index(email.strip().lower(), kind="staff.login")


def keys_for(*, email: str, client: str, device_id: int | None = None, own_only: bool = False) -> Keys:
    ring = keyring()
    address = email.strip().lower()
    client = address_key(client)  # an IPv6 client by its /64, as every request limit counts it
    return Keys(account=account_key(address), client=ring.blind_index(client, kind="staff.client"),
                pair=ring.blind_index(f"{client}\n{address}", kind="staff.login_client"), device_id=device_id,
                own_only=own_only)


def _limits(scope: str) -> tuple[int | None, int]:
    """(back off after, lock after) failures; the account's counter only locks (back-off is per client)."""
    s = get_settings()
    return {ACCOUNT: (None, s.LOGIN_LOCK_AFTER), PAIR: (s.LOGIN_BACKOFF_AFTER, s.LOGIN_LOCK_AFTER),
            CLIENT: (s.LOGIN_CLIENT_BACKOFF_AFTER, s.LOGIN_CLIENT_LOCK_AFTER),
            DEVICE: (s.LOGIN_DEVICE_BACKOFF_AFTER, s.LOGIN_DEVICE_LOCK_AFTER)}[scope]


def _held(row: LoginThrottle | None, now: datetime) -> bool:
    if row is None:
        return False
    return any(t is not None and t > now for t in (row.locked_until, row.not_before))


def held_back(session: Session, *, keys: Keys, now: datetime) -> bool:
    """Whether a counter that applies to this attempt is locked or still inside a back-off delay."""
    repo = ThrottleRepository(session)
    return any(_held(repo.find(scope, key), now) for scope, key in keys.scopes())


def record_failure(session: Session, *, keys: Keys, now: datetime) -> list[str]:
    """Count one failure on every counter that applies; returns the scopes this failure has just locked."""
    settings = get_settings()
    window = timedelta(minutes=settings.LOGIN_FAILURE_WINDOW_MINUTES)
    locked = []
    repo = ThrottleRepository(session)
    for scope, key in keys.scopes():
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
        elif backoff_after is not None and row.failures >= backoff_after:
            # Doubling delays: 2 s, 4 s, 8 s ... never longer than the lock itself.
            delay = min(settings.LOGIN_BACKOFF_BASE_SECONDS * 2 ** (row.failures - backoff_after),
                        settings.LOGIN_LOCK_MINUTES * 60)
            row.not_before = now + timedelta(seconds=delay)
    session.flush()
    return locked


def clear_after_success(session: Session, *, keys: Keys) -> None:
    """A successful sign-in forgets this client's (or device's) failures against the account, not the
    client's failures against others: one good account must not let a client keep guessing at others."""
    repo = ThrottleRepository(session)
    for scope, key in keys.scopes():
        row = repo.find(scope, key)
        if row is not None and scope != CLIENT:
            row.failures, row.not_before, row.locked_until = 0, None, None


def unlock_account(session: Session, *, email: str) -> None:
    """An admin lifts an account's lock for browsers it has not signed in from (the person asked for help)."""
    row = ThrottleRepository(session).find(ACCOUNT, account_key(email))
    if row is not None:
        row.failures, row.not_before, row.locked_until = 0, None, None
