"""Normalising and validating member contact details."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import PhoneNumberType
from phonenumbers.phonemetadata import PhoneMetadata


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
# libphonenumber's own pattern for GB mobiles, so that the fast path decides exactly as the full check.
_GB_MOBILE_NSN = re.compile(PhoneMetadata.metadata_for_region("GB").mobile.national_number_pattern)
# Fictional mobiles: Ofcom's range for drama (07700 900000-900999) and the rest of its block, 07700 9xxxxx, which
# no network holds (libphonenumber finds none of it valid). The demo gives each member a number of its own here.
_DRAMA_NSN = re.compile(r"77009[0-9]{5}")
_SMS_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


@dataclass(frozen=True)
class Phone:
    e164: str
    sms: bool  # can take SMS: a mobile, or a number that may be either fixed-line or mobile


def check_phone(value: str, *, region: str = "GB", allow_drama: bool = False) -> Phone:
    """A valid phone number in E.164 and whether it can take SMS; UK numbers may be written in national form.

    `allow_drama` accepts the fictional mobiles (07700 9xxxxx, as mobiles), for demo and test data outside production.
    """
    compact = value.replace(" ", "")
    fast = _UK_MOBILE.fullmatch(compact)
    if fast and (region == "GB" or compact.startswith("+")):
        national = fast.group(1)
        if _GB_MOBILE_NSN.fullmatch(national) or (allow_drama and _DRAMA_NSN.fullmatch(national)):
            return Phone("+44" + national, True)
    parsed = _parse(value, region)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if allow_drama and parsed.country_code == 44 and _DRAMA_NSN.fullmatch(str(parsed.national_number)):
        return Phone(e164, True)
    if not phonenumbers.is_valid_number(parsed):
        raise ContactError("invalid phone number: not a number in use (check the digits and the country code)")
    return Phone(e164, phonenumbers.number_type(parsed) in _SMS_TYPES)


def is_drama(e164: str) -> bool:
    """Whether a number (E.164) is one of the fictional mobiles `allow_drama` accepts: never a real phone."""
    return e164.startswith("+44") and _DRAMA_NSN.fullmatch(e164[3:]) is not None


def normalise_phone(value: str, *, region: str = "GB") -> str:
    """Return an E.164 phone number if it is possible at all; for matching numbers a provider reports.

    Storing a number takes `check_phone`, which also requires the number to be valid.
    """
    compact = value.replace(" ", "")
    fast = _UK_MOBILE.fullmatch(compact)
    if fast and (region == "GB" or compact.startswith("+")):
        return "+44" + fast.group(1)
    parsed = _parse(value, region)
    if not phonenumbers.is_possible_number(parsed):
        raise ContactError("invalid phone number: not a possible number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _parse(value: str, region: str) -> phonenumbers.PhoneNumber:
    try:
        return phonenumbers.parse(value.strip(), region)
    except phonenumbers.NumberParseException as exc:
        raise ContactError(f"invalid phone number: {exc}") from exc


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str) -> str:
    return f"{'*' * max(len(phone) - 3, 0)}{phone[-3:]}"
