from __future__ import annotations

import pytest

from app.kit.contacts import ContactError, normalise_email, normalise_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ann.Jones@Kent.Example.ORG", "ann.jones@kent.example.org"),
        ("  ann+tag@example.org ", "ann+tag@example.org"),
        ("o'brien@example.org", "o'brien@example.org"),
        ("用户@example.org", "用户@example.org"),
    ],
)
def test_emails_are_normalised(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize("raw", ["ann", "ann@", "@example.org", "ann@@example.org", "ann@example", "a b@example.org",
                                 "ann@-bad-.example.org", "ann..jones@example.org"])
def test_invalid_emails_are_refused(raw: str) -> None:
    with pytest.raises(ContactError):
        normalise_email(raw)


@pytest.mark.parametrize(("raw", "expected"), [("07700 900123", "+447700900123"), ("+44 7700 900123", "+447700900123"),
                                               ("+1 202 555 0123", "+12025550123")])
def test_phones_become_e164(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize("raw", ["12", "not a number", "+44 1"])
def test_impossible_phones_are_refused(raw: str) -> None:
    with pytest.raises(ContactError):
        normalise_phone(raw)


def test_the_fast_paths_agree_with_the_full_checks() -> None:
    import phonenumbers

    for raw in ["07700900123", "07700 900 123", "+447700900123", "+44 7700 900123", "07123456789"]:
        full = phonenumbers.format_number(phonenumbers.parse(raw, "GB"), phonenumbers.PhoneNumberFormat.E164)
        assert normalise_phone(raw) == full
    with pytest.raises(ContactError):
        normalise_email("abc\n@example.org")
    assert normalise_phone("٠٧٧٠٠٩٠٠١٢٣") == "+447700900123", "other digit forms still take the full parse"
