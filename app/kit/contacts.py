"""Normalising and validating member contact details."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class ContactError(ValueError):
    pass


# Plain ASCII dot-atom local parts, which email-validator always accepts; anything else takes the full check.
_SIMPLE_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


def _full_check(value: str) -> str:
    try:
        result = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ContactError(f"invalid email: {exc}") from exc
    return result.normalized.lower()


@lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> str:
    # Members share a few hundred domains at most: check each once (it is most of the cost).
    return _full_check(f"a@{domain}").partition("@")[2]


def normalise_email(value: str) -> str:
    """Return the canonical form of an email address used for storage and blind indexes."""
    value = value.strip()
    local, at, domain = value.rpartition("@")
    if at and value.isascii() and len(value) <= 254 and len(local) <= 64 and _SIMPLE_LOCAL.fullmatch(local):
        return f"{local.lower()}@{_checked_domain(domain)}"
    return _full_check(value)


# UK mobiles, the common case, in national or international form (ASCII digits only).
_UK_MOBILE = re.compile(r"(?:0|\+44)(7[0-9]{9})")


def normalise_phone(value: str, *, region: str = "GB") -> str:
    """Return an E.164 phone number; UK numbers may be written in national form."""
    compact = value.replace(" ", "")
    fast = _UK_MOBILE.fullmatch(compact)
    if fast and (region == "GB" or compact.startswith("+")):
        return "+44" + fast.group(1)
    try:
        parsed = phonenumbers.parse(value.strip(), region)
    except phonenumbers.NumberParseException as exc:
        raise ContactError(f"invalid phone number: {exc}") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ContactError("invalid phone number: not a possible number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str) -> str:
    return f"{'*' * max(len(phone) - 3, 0)}{phone[-3:]}"
