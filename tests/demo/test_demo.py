from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.branches.models import Branch
from app.demo.service import INCIDENT_CODE, load_demo
from app.incidents.models import DataCategory
from app.members import pii
from app.members.models import Exposure, Member


def test_demo_is_a_plausible_synthetic_organisation(session: Session) -> None:
    result = load_demo(session, members=3000)
    assert result.members.inserted == 3000 and result.members.rejected_rows == 0
    sizes = dict(session.execute(select(Branch.code, func.count(Member.id)).join(Member).group_by(Branch.code)).all())
    assert max(sizes, key=sizes.__getitem__) == "metropolitan"
    assert len(sizes) >= 40
    by_category = dict(session.execute(
        select(DataCategory.code, func.count(Exposure.id)).join(Exposure).group_by(DataCategory.code)).all())
    assert by_category["police_email"] == by_category["ni_number"] == 3000
    assert 0 < by_category["card_details"] < 600 and 0 < by_category["bank_details"] < 400
    member = session.execute(select(Member).where(Member.email_enc.is_not(None)).limit(1)).scalar_one()
    assert pii.open_email(member.email_enc).endswith(".example.org")  # type: ignore[union-attr]
    phones = {pii.open_phone(m.phone_enc) for m in session.execute(
        select(Member).where(Member.phone_enc.is_not(None)).limit(200)).scalars()}
    assert all(p.startswith("+447700900") for p in phones)  # type: ignore[union-attr]
    assert {login.role for login in result.logins} == {"admin", "supervisor", "agent", "auditor", "branch_viewer"}
    assert len(result.logins) == 6, "two admins, so one can approve what the other wrote"


def test_loading_the_demo_again_changes_nothing_and_prints_no_new_logins(session: Session) -> None:
    load_demo(session, members=500)
    again = load_demo(session, members=500)
    assert again.members.unchanged == 500 and again.logins == []
    assert INCIDENT_CODE
