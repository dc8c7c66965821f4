"""Phone numbers: only valid ones are stored, and SMS is planned only to those that can take it."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.members import imports
from app.members import service as member_service
from app.members.models import Member
from tests.factories import import_members, member_row


@pytest.fixture
def incident(session: Session):  # type: ignore[no-untyped-def]
    from app.incidents import service as incident_service

    return incident_service.create_incident(session, code="inc-sms", title="Test incident", summary="x")


def expose(session: Session, *numbers: str) -> None:
    rows = "".join(f"{n},inc-sms,police_email\n" for n in numbers)
    data = io.BytesIO(("membership_number,incident_code,categories\n" + rows).encode())
    assert imports.import_exposures(session, source=data, actor="test").rejected_rows == 0


def by_number(session: Session) -> dict[str, Member]:
    return {m.membership_number: m for m in session.execute(select(Member)).scalars()}


def test_an_impossible_number_is_rejected_not_stored_as_a_guess(session: Session) -> None:
    summary = import_members(session, member_row("P1", phone="12345"), member_row("P2", phone="0500 123456"))
    assert summary.rejected_rows == 2 and summary.inserted == 0
    assert {r.column for r in summary.rejections} == {"phone"}
    assert all("invalid phone number" in r.reason for r in summary.rejections)


def test_phones_that_cannot_take_sms_are_kept_and_counted(session: Session) -> None:
    summary = import_members(session, member_row("S1", phone="07700 900001"), member_row("S2", phone="020 7946 0001"),
                             member_row("S3", phone="0300 123 4567"), member_row("S4", phone=""))
    assert (summary.inserted, summary.phones_without_sms) == (4, 2)
    assert summary.as_dict()["phones_without_sms"] == 2
    members = by_number(session)
    assert [members[n].phone_sms for n in ("S1", "S2", "S3", "S4")] == [True, False, False, None]
    assert members["S2"].phone_enc is not None, "a landline stays on file for the helpline to call"


def test_sms_is_addressed_only_to_phones_that_can_take_it(session: Session, incident) -> None:  # type: ignore[no-untyped-def]
    import_members(session, member_row("A1", phone="07700 900001"), member_row("A2", phone="020 7946 0001"),
                   member_row("A3", phone=""))
    expose(session, "A1", "A2", "A3")
    members = by_number(session)
    page = {m.member_id: m for m in member_service.audience_page(session, incident_id=incident.id)}
    assert page[members["A1"].id].phone_index == members["A1"].phone_index is not None
    assert page[members["A2"].id].phone_index is None, "no SMS to a landline"
    assert page[members["A3"].id].phone_index is None
    assert page[members["A2"].id].email_index is not None, "email still reaches them"

    contacts = member_service.contacts(session, [members["A1"].id, members["A2"].id])
    landline = contacts[members["A2"].id]
    assert landline.phone == "+442079460001" and landline.phone_sms is False and landline.phone_index is None
    assert contacts[members["A1"].id].phone_index == members["A1"].phone_index


def test_members_imported_before_the_flag_keep_sms_until_imported_again(session: Session, incident) -> None:  # type: ignore[no-untyped-def]
    rows = [member_row("O1", phone="07700 900001"), member_row("O2", phone="020 7946 0001")]
    import_members(session, *rows)
    expose(session, "O1", "O2")
    session.execute(update(Member).values(phone_sms=None))  # as the migration leaves existing members
    members = by_number(session)
    page = {m.member_id: m for m in member_service.audience_page(session, incident_id=incident.id)}
    assert page[members["O2"].id].phone_index is not None, "not yet checked: treated as before"

    again = import_members(session, *rows)
    assert (again.updated, again.unchanged) == (0, 2), "recording the flag is not a change of the member"
    session.expire_all()
    assert [m.phone_sms for _, m in sorted(by_number(session).items())] == [True, False]


def test_drama_numbers_are_refused_when_the_setting_is_off(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import get_settings

    monkeypatch.setenv("PORTAL_ACCEPT_DRAMA_NUMBERS", "false")
    get_settings.cache_clear()
    try:
        summary = import_members(session, member_row("D1", phone="07700 900123"),
                                 member_row("D2", phone="07911 123456"))
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert summary.inserted == 1
    assert [(r.line, r.column) for r in summary.rejections] == [(2, "phone")]
