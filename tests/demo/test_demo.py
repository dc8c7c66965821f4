from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.models import StaffUser
from app.branches.models import Branch
from app.demo.service import INCIDENT_CODE, load_demo
from app.incidents.models import DataCategory
from app.members import pii
from app.members.models import Exposure, Member


def test_demo_is_a_plausible_synthetic_organisation(session: Session) -> None:
    result = load_demo(session, members=3000)
    assert result.members.inserted == 3003 and result.members.rejected_rows == 0, "3,000 affected, 3 not"
    sizes = dict(session.execute(select(Branch.code, func.count(Member.id)).join(Member).group_by(Branch.code)).all())
    assert max(sizes, key=sizes.__getitem__) == "metropolitan"
    assert len(sizes) >= 40
    by_category = dict(session.execute(
        select(DataCategory.code, func.count(Exposure.id)).join(Exposure).group_by(DataCategory.code)).all())
    assert by_category["police_email"] == by_category["ni_number"] == 3000
    assert 0 < by_category["card_details"] < 600 and 0 < by_category["bank_details"] < 400
    member = session.execute(select(Member).where(Member.email_enc.is_not(None)).limit(1)).scalar_one()
    assert pii.open_email(member.email_enc).endswith(".example.org")  # type: ignore[union-attr]
    assert {login.role for login in result.logins} == {"admin", "supervisor", "agent", "auditor", "branch_viewer"}
    assert len(result.logins) == 6, "two admins, so one can approve what the other wrote"


def test_every_demo_phone_is_a_fictional_number_of_its_own(session: Session) -> None:
    load_demo(session, members=3000, with_staff=False)
    phones = [pii.open_phone(p) for p in session.execute(
        select(Member.phone_enc).where(Member.phone_enc.is_not(None))).scalars()]
    assert len(phones) > 2000
    assert len(set(phones)) == len(phones), "one open callback per phone: no two members share a number"
    assert all(p.startswith("+4477009") and len(p) == 13 for p in phones)  # type: ignore[union-attr]


def test_the_demo_names_a_member_of_each_kind_to_check_as(session: Session) -> None:
    result = load_demo(session, members=3000, with_staff=False)
    kinds = {m.kind: m for m in result.to_try}
    assert list(kinds) == ["email", "sms", "unaffected"]

    def exposures(number: str) -> int:
        member = session.execute(select(Member).where(Member.membership_number == number)).scalar_one()
        return session.execute(select(func.count()).where(Exposure.member_id == member.id)).scalar_one()

    assert kinds["email"].email.endswith(".example.org") and exposures(kinds["email"].membership_number) > 0
    assert kinds["sms"].email == "" and kinds["sms"].phone.startswith("07700 9")
    assert exposures(kinds["sms"].membership_number) > 0
    assert exposures(kinds["unaffected"].membership_number) == 0, "the 'not affected' page can be seen"
    assert load_demo(session, members=3000, with_staff=False).to_try == result.to_try, "the same ones each time"


def test_a_small_demo_has_no_unaffected_member(session: Session) -> None:
    result = load_demo(session, members=200, with_staff=False)
    assert result.members.inserted == 200 and "unaffected" not in {m.kind for m in result.to_try}


def test_the_demo_branch_viewer_has_a_branch(session: Session) -> None:
    load_demo(session, members=10)
    viewer = session.execute(select(StaffUser).where(StaffUser.email == "viewer@example.org")).scalar_one()
    branch = session.get(Branch, viewer.branch_id)
    assert branch is not None and branch.code == "metropolitan"
    viewer.branch_id = None  # a demo database from before the viewer had a branch
    session.flush()
    load_demo(session, members=10)
    session.refresh(viewer)
    assert viewer.branch_id == branch.id, "loading the demo again gives it one"


def test_loading_the_demo_again_changes_nothing_and_prints_no_new_logins(session: Session) -> None:
    load_demo(session, members=500)
    again = load_demo(session, members=500)
    assert again.members.unchanged == 500 and again.logins == []
    assert INCIDENT_CODE


def test_a_demo_member_can_ask_for_a_callback_on_their_own_number(session: Session) -> None:
    from app.callbacks import service as callback_service

    load_demo(session, members=2000, with_staff=False)
    phones = [pii.open_phone(p) for p in session.execute(
        select(Member.phone_enc).where(Member.phone_enc.is_not(None))).scalars()]
    beyond_drama = next(p for p in phones if not p.startswith("+447700900"))  # type: ignore[union-attr]
    e164, sms = callback_service.parse_phone("0" + beyond_drama[3:8] + " " + beyond_drama[8:])  # type: ignore[index]
    assert (e164, sms) == (beyond_drama, True) and callback_service.phone_country_allowed(e164)
