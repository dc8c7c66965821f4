from __future__ import annotations

import pytest

from app.kit.contacts import ContactError, Phone, check_phone, normalise_email, normalise_phone


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


@pytest.mark.parametrize(
    ("raw", "e164", "sms"),
    [
        ("07911 123456", "+447911123456", True),
        ("+44 7911 123456", "+447911123456", True),
        ("020 7946 0000", "+442079460000", False),  # a London landline: the helpline can call it
        ("0300 123 4567", "+443001234567", False),
        ("+1 202 555 0123", "+12025550123", True),  # North American numbers may be either
    ],
)
def test_valid_phones_say_whether_they_take_sms(raw: str, e164: str, sms: bool) -> None:
    assert check_phone(raw) == Phone(e164, sms)


@pytest.mark.parametrize("raw", ["12345", "12", "+44 1", "+44 20 1234", "0500 123456", "not a number"])
def test_numbers_that_are_not_valid_are_refused(raw: str) -> None:
    with pytest.raises(ContactError, match="invalid phone number"):
        check_phone(raw, allow_drama=True)


@pytest.mark.parametrize("raw", ["07700 900123", "+44 7700 900000", "07700900999", "٠٧٧٠٠٩٠٠١٢٣", "07700 901000",
                                 "07700 999999"])
def test_drama_numbers_only_when_allowed_and_then_as_mobiles(raw: str) -> None:
    with pytest.raises(ContactError):
        check_phone(raw)
    assert check_phone(raw, allow_drama=True).sms
    with pytest.raises(ContactError):
        check_phone("07700 200000", allow_drama=True)  # outside 07700 9xxxxx, and in no network's range


def test_the_mobile_fast_path_decides_as_libphonenumber_does() -> None:
    import phonenumbers

    for prefix in range(7000, 8000, 7):
        raw = f"0{prefix}123456"
        parsed = phonenumbers.parse(raw, "GB")
        if phonenumbers.is_valid_number(parsed):
            sms = phonenumbers.number_type(parsed) in (phonenumbers.PhoneNumberType.MOBILE,
                                                      phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
            assert check_phone(raw) == Phone(f"+44{raw[1:]}", sms), raw
        else:
            with pytest.raises(ContactError):
                check_phone(raw)
