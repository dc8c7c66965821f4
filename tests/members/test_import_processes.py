"""A big import checks and seals its rows in several processes: the outcome is the same as in one."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.members import imports, pii
from app.members.models import Member
from tests.factories import member_csv, member_row


def rows() -> list[str]:
    out = []
    for i in range(9000):
        if i % 97 == 0:
            out.append(member_row(f"PX{i}", branch="nowhere"))
        elif i % 101 == 0:
            out.append(member_row(f"PX{i}", first="A\u202enn"))
        elif i % 89 == 0:
            out.append(member_row("PX-REPEATED"))
        else:
            out.append(member_row(f"PX{i}", phone="020 7946 0001" if i % 7 == 0 else "07700 900123",
                                  first="O\\'Brien\\x" if i % 13 == 0 else "Ann"))
    return out


def state(session: Session) -> list[tuple[object, ...]]:
    return [(m.membership_number, m.first_name, m.branch_id, m.phone_sms, m.email_index, pii.open_email(m.email_enc),
             pii.open_phone(m.phone_enc)) for m in session.execute(select(Member).order_by(Member.id)).scalars()]


def test_several_processes_import_exactly_what_one_does(session: Session) -> None:
    data = rows()
    sink_one: list[imports.Rejection] = []
    one = imports.import_members(session, source=member_csv(*data), actor="test", processes=1,
                                 on_reject=sink_one.append)
    after_one = state(session)
    session.rollback()
    assert state(session) == []

    sink_many: list[imports.Rejection] = []
    many = imports.import_members(session, source=member_csv(*data), actor="test", processes=2, pool_after=0,
                                  on_reject=sink_many.append)
    assert many.as_dict() == one.as_dict()
    assert sink_many == sink_one, "the same reasons, in the same order"
    assert state(session) == after_one
    assert one.inserted > 8000 and one.phones_without_sms and one.rejected_rows > 100
