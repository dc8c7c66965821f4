"""Keyed hashes for "check your status": identifiers, browser tokens and one-time codes.

HMAC-SHA256 with keys derived from PORTAL_SECRET_KEY, one per purpose, so a copy of the tables alone
neither answers a challenge nor says which identifier was typed.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from app.config import get_settings


@lru_cache(maxsize=16)
def _key(purpose: str, secret: str) -> bytes:
    return hashlib.sha256(b"portal.lookup\x00" + purpose.encode() + b"\x00" + secret.encode()).digest()


def keyed_hash(purpose: str, value: str) -> str:
    key = _key(purpose, get_settings().SECRET_KEY.get_secret_value())
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def identifier_hash(normalised: str) -> str:
    """The hash limits and the audit use in place of a membership number or an email address."""
    return keyed_hash("identifier", normalised)


def token_hash(token: str) -> str:
    return keyed_hash("token", token)


def code_hash(challenge_id: int, code: str) -> str:
    # Bound to its challenge: the same code in another challenge hashes differently.
    return keyed_hash("code", f"{challenge_id}:{code}")


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
