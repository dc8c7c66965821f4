"""Masking contacts (email addresses, phone-number-like digit runs) inside free text such as provider errors."""

from __future__ import annotations

import re

# Loose on purpose: a provider's text quotes addresses in every shape (<a@b>, "a@b", a@b.), and masking
# something that only looks like an address costs nothing.
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
# A run of digits with the separators people write numbers with; 9 to 15 digits is a phone number
# (E.164 allows 15; 8 digits with dashes is a date, 5 is a provider's error code). Dots do not join a
# run, so an IP address or an SMTP status stays readable.
_DIGITS = re.compile(r"\+?\d(?:[\d \-()]*\d)?")
_MIN_PHONE_DIGITS = 9
_MAX_PHONE_DIGITS = 15


def _email(match: re.Match[str]) -> str:
    local, _, domain = match.group(0).partition("@")
    return f"{local[:1]}***@{domain}"


def _digits(match: re.Match[str]) -> str:
    run = match.group(0)
    digits = sum(c.isdigit() for c in run)
    if not _MIN_PHONE_DIGITS <= digits <= _MAX_PHONE_DIGITS:
        return run
    return f"{'+' if run.startswith('+') else ''}{'*' * (digits - 3)}{''.join(c for c in run if c.isdigit())[-3:]}"


def mask_contacts(text: str) -> str:
    """`text` with each email address and phone number masked as exports show them."""
    if "@" in text:
        text = _EMAIL.sub(_email, text)
    return _DIGITS.sub(_digits, text)


def contains_contact(text: str) -> bool:
    """Whether `text` still holds something that looks like an email address or a phone number."""
    return mask_contacts(text) != text
