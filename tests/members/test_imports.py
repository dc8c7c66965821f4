"""Member and exposure imports: every bad row gets a reason, nothing half-written."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.members import imports, pii
from app.members.models import Exposure, Member
from tests.factories import MEMBER_HEADER, import_members, member_csv, member_row


def members(session: Session) -> list[Member]:
    return list(session.execute(select(Member).order_by(Member.membership_number)).scalars())


def reasons(summary: imports.ImportSummary) -> dict[tuple[int, str], str]:
    return {(r.line, r.column): r.reason for r in summary.rejections}


def test_valid_rows_are_stored_encrypted_and_normalised(session: Session) -> None:
    summary = import_members(session, member_row("A1", email="Ann.Jones@Kent.Example.org", phone="07700 900123"),
                             member_row("A2", email="", phone="+44 7700 900456", branch="gwent"))
    assert summary.inserted == 2 and summary.rejected_rows == 0
    a1, a2 = members(session)
    assert a1.email_enc and "example" not in a1.email_enc
    assert pii.open_email(a1.email_enc) == "ann.jones@kent.example.org"
    assert pii.open_phone(a1.phone_enc) == "+447700900123"
    assert a1.email_index == pii.email_index("ann.jones@kent.example.org")
    assert a2.email_enc is None and pii.open_phone(a2.phone_enc) == "+447700900456"
    assert a2.preferred_language == "cy", "a Gwent member with no preference gets the branch default"


def test_importing_the_same_file_twice_changes_nothing(session: Session) -> None:
    rows = [member_row("B1"), member_row("B2"), member_row("B3")]
    first = import_members(session, *rows)
    before = {m.membership_number: (m.updated_at, m.email_enc) for m in members(session)}
    second = import_members(session, *rows)
    assert (first.inserted, second.inserted, second.updated, second.unchanged) == (3, 0, 0, 3)
    assert {m.membership_number: (m.updated_at, m.email_enc) for m in members(session)} == before


def test_changed_rows_update_in_place(session: Session) -> None:
    import_members(session, member_row("C1", last="Jones"), member_row("C2"))
    summary = import_members(session, member_row("C1", last="Evans", email="new@kent.example.org"), member_row("C2"))
    assert (summary.updated, summary.unchanged) == (1, 1)
    c1 = members(session)[0]
    assert c1.last_name == "Evans" and pii.open_email(c1.email_enc) == "new@kent.example.org"


@pytest.mark.parametrize(
    ("row", "column", "reason_part"),
    [
        (member_row("D1", branch="atlantis"), "branch_code", "unknown branch"),
        (member_row("D2", email="not-an-email"), "email", "invalid email"),
        (member_row("D3", phone="12"), "phone", "invalid phone"),
        (member_row("D4", email="", phone=""), "email", "neither email nor phone"),
        (member_row("D5", first="x" * 101), "first_name", "longer than 100"),
        (member_row("D6", last="=HYPERLINK(\"http://evil\")".replace(",", "")), "last_name", "formula"),
        (member_row("D7", first="+SUM(1)"), "first_name", "formula"),
        (member_row("D8", first="-2+3"), "first_name", "formula"),
        (member_row("D9", first="@cmd"), "first_name", "formula"),
        (member_row("", first="Ann"), "membership_number", "required"),
        (member_row("D10", lang="fr"), "preferred_language", "'en' or 'cy'"),
    ],
)
def test_each_bad_row_is_rejected_with_its_reason(session: Session, row: str, column: str, reason_part: str) -> None:
    summary = import_members(session, member_row("OK1"), row)
    assert summary.rejected_rows == 1 and summary.inserted == 1
    assert reason_part in reasons(summary)[(3, column)]


def test_wrong_cell_count_is_rejected(session: Session) -> None:
    summary = import_members(session, member_row("E1"), "E2,Ann,Jones")
    assert reasons(summary)[(3, "")] == "expected 8 cells, found 3"


def test_duplicate_numbers_inside_a_file_reject_every_copy(session: Session) -> None:
    summary = import_members(session, member_row("F1"), member_row("F2"), member_row("F1", first="Other"))
    assert summary.inserted == 1
    assert "also line 4" in reasons(summary)[(2, "membership_number")]
    assert "also line 2" in reasons(summary)[(4, "membership_number")]
    assert [m.membership_number for m in members(session)] == ["F2"]


def test_strict_writes_nothing_when_any_row_is_rejected(session: Session) -> None:
    summary = import_members(session, member_row("G1"), member_row("G2", branch="nowhere"), strict=True)
    assert not summary.written and summary.rejected_rows == 1
    assert members(session) == []


def test_bom_crlf_and_non_utf8_rows(session: Session) -> None:
    good = member_row("H1").encode()
    bad = member_row("H2", first="Ann").encode().replace(b"Ann", b"An\xff")
    data = b"\xef\xbb\xbf" + MEMBER_HEADER.encode() + b"\r\n" + good + b"\r\n" + bad + b"\r\n"
    summary = imports.import_members(session, source=io.BytesIO(data), actor="test")
    assert summary.inserted == 1
    assert reasons(summary)[(3, "")] == "row is not valid UTF-8"
    assert members(session)[0].rank == "Constable", "CRLF must not leak into the last cell"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (b"membership_number,first_name\nX,Y\n", "missing columns: last_name, email, phone, branch_code"),
        (b"\xff\xfe,bad\n", "not valid UTF-8"),
    ],
)
def test_unusable_files_are_refused_whole(session: Session, data: bytes, message: str) -> None:
    with pytest.raises(imports.CsvFileError, match=message):
        imports.import_members(session, source=io.BytesIO(data), actor="test")
    assert members(session) == []


def test_a_failure_midway_leaves_the_database_as_it_was(session_factory) -> None:  # type: ignore[no-untyped-def]
    from app.db import session_scope

    class Exploding:
        """6,000 good rows (more than one staged chunk), then a read error."""

        def __init__(self) -> None:
            self.data = [member_csv(*[member_row(f"J{i}") for i in range(6000)]).getvalue()]

        def read(self, size: int = -1) -> bytes:
            if self.data:
                return self.data.pop()
            raise OSError("disk went away")

    with pytest.raises(OSError), session_scope(session_factory) as s:
        imports.import_members(s, source=Exploding(), actor="test")  # type: ignore[arg-type]
    with session_factory() as s:
        assert s.execute(select(func.count()).select_from(Member)).scalar_one() == 0


def exposures_csv(*rows: str) -> io.BytesIO:
    return io.BytesIO(("membership_number,incident_code,categories\n" + "\n".join(rows) + "\n").encode())


@pytest.fixture
def incident(session: Session):  # type: ignore[no-untyped-def]
    from app.incidents import service as incident_service

    return incident_service.create_incident(session, code="inc-1", title="Test incident", summary="x")


def exposure_codes(session: Session, number: str) -> set[str]:
    from app.incidents.models import DataCategory

    stmt = (select(DataCategory.code).join(Exposure, Exposure.category_id == DataCategory.id)
            .join(Member, Member.id == Exposure.member_id).where(Member.membership_number == number))
    return set(session.execute(stmt).scalars())


def test_exposures_set_exactly_the_listed_categories(session: Session, incident) -> None:  # type: ignore[no-untyped-def]
    import_members(session, member_row("K1"), member_row("K2"))
    first = imports.import_exposures(session, source=exposures_csv("K1,inc-1,police_email;ni_number",
                                                                   "K2,inc-1,bank_details"), actor="test")
    assert first.inserted == 3
    assert exposure_codes(session, "K1") == {"police_email", "ni_number"}
    again = imports.import_exposures(session, source=exposures_csv("K1,inc-1,police_email;ni_number",
                                                                   "K2,inc-1,bank_details"), actor="test")
    assert (again.inserted, again.removed) == (0, 0)
    narrowed = imports.import_exposures(session, source=exposures_csv("K1,inc-1,police_email"), actor="test")
    assert (narrowed.inserted, narrowed.removed) == (0, 1)
    assert exposure_codes(session, "K1") == {"police_email"}
    assert exposure_codes(session, "K2") == {"bank_details"}


def test_exposure_rows_are_checked_against_members_incidents_and_categories(session: Session, incident) -> None:  # type: ignore[no-untyped-def]
    import_members(session, member_row("L1"))
    summary = imports.import_exposures(
        session,
        source=exposures_csv("L1,inc-1,police_email", "NOPE,inc-1,police_email", "L1,inc-9,police_email",
                             "L1,inc-1,shoe_size", "L1,inc-1,", "L1,inc-1,ni_number"),
        actor="test",
    )
    r = reasons(summary)
    assert r[(3, "membership_number")] == "no member with this membership number"
    assert "unknown incident" in r[(4, "incident_code")]
    assert "shoe_size" in r[(5, "categories")]
    assert r[(6, "categories")] == "no category given"
    assert "repeated" in r[(2, "membership_number")] and "repeated" in r[(7, "membership_number")]
    assert exposure_codes(session, "L1") == set()
