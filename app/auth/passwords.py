"""Staff passwords: argon2id, a length policy, and the same work whether or not an account exists."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.errors import AppError

# argon2-cffi's defaults (argon2id, t=3, m=64 MiB, p=4: RFC 9106's second choice) exceed ASVS 5.0 appendix C.
_hasher = PasswordHasher()
MIN_PASSWORD = 12
MAX_PASSWORD = 256


class WeakPassword(AppError):
    status_code = 422


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _common() -> frozenset[str]:
    """The shipped list of common and breached passwords (lower case)."""
    lines = (Path(__file__).with_name("common-passwords.txt").read_text(encoding="utf-8").splitlines())
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def is_common(password: str) -> bool:
    """Whether the password, ignoring case and spaces, is on the list of common and breached passwords."""
    lowered = password.strip().lower()
    return lowered in _common() or "".join(lowered.split()) in _common()


def check_policy(password: str, *, email: str) -> None:
    """Length (ASVS 6.2.1, 6.2.5: no composition rules), not the address itself, and not a common or breached
    password (6.2.4)."""
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"Passwords must be at least {MIN_PASSWORD} characters long")
    if len(password) > MAX_PASSWORD:
        raise WeakPassword(f"Passwords must be at most {MAX_PASSWORD} characters long")
    if password.strip().lower() == email.strip().lower() or len(set(password)) < 4:
        raise WeakPassword("Choose a password that is harder to guess")
    if is_common(password):
        raise WeakPassword("This is one of the most common passwords, so it is among the first that attackers "
                           "try: choose another")


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether the password matches; with no hash, the same argon2 work is done against a dummy."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
