"""Normalising and validating member contact details."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class ContactError(ValueError):
    pass


def normalise_email(value: str) -> str:
    """Return the canonical form of an email address used for storage and blind indexes."""
    try:
        result = validate_email(value.strip(), check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ContactError(f"invalid email: {exc}") from exc
    return result.normalized.lower()


def normalise_phone(value: str, *, region: str = "GB") -> str:
    """Return an E.164 phone number; UK numbers may be written in national form."""
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
