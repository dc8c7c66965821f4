"""Sealing and opening member contact details with the configured keyring."""

from __future__ import annotations

from functools import lru_cache

from app.config import get_settings
from app.kit.crypto import Keyring

EMAIL_CONTEXT = b"members.email"
PHONE_CONTEXT = b"members.phone"


@lru_cache(maxsize=4)
def _keyring(spec: str) -> Keyring:
    return Keyring.parse(spec)


def keyring() -> Keyring:
    return _keyring(get_settings().PII_KEY.get_secret_value())


def email_index(normalised_email: str) -> str:
    return keyring().blind_index(normalised_email, kind="email")


def phone_index(e164: str) -> str:
    return keyring().blind_index(e164, kind="phone")


def open_email(token: str | None) -> str | None:
    return None if token is None else keyring().decrypt(token, context=EMAIL_CONTEXT)


def open_phone(token: str | None) -> str | None:
    return None if token is None else keyring().decrypt(token, context=PHONE_CONTEXT)
