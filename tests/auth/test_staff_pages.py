"""Staff sign-in, first-time set-up, sign-out, own sessions and the admin's staff pages, through the real app."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.auth import service as auth_service
from app.auth.models import Role, StaffUser
from tests.auth.conftest import PASSWORD
from tests.auth.web import form_token, post_form, sign_in
from tests.operators import Operator


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def person(session: Session) -> Callable[..., Operator]:
    def make(email: str = "pat@example.org", role: Role = Role.AGENT) -> Operator:
        created = auth_service.create_staff(session, email=email, role=role, password=PASSWORD, actor="test")
        session.commit()
        return Operator(created.user.email, PASSWORD, created.totp_secret)

    return make


def refusal_of(response) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """Status and page with the visitor-specific token taken out: what tells one refusal from another."""
    return response.status_code, re.sub(r'value="[0-9a-f]{64}"', "", response.text)


def test_password_then_code_signs_in_and_the_next_page_knows_who(browser: TestClient,
                                                                 person: Callable[..., Operator]) -> None:
    pat = person()
    assert browser.get("/staff/sessions").headers["location"] == "/staff/login?next=/staff/sessions"
    done = sign_in(browser, pat, next_path="/staff/sessions")
    assert done.status_code == 303 and done.headers["location"] == "/staff/sessions"
    page = browser.get("/staff/sessions")
    assert page.status_code == 200 and "pat@example.org" in page.text and "this session" in page.text


def test_unknown_address_wrong_password_and_locked_account_look_the_same(
        browser: TestClient, person: Callable[..., Operator], monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import get_settings

    pat = person()
    unknown = post_form(browser, "/staff/login", "/staff/login", email="nobody@example.org", password=PASSWORD)
    wrong = post_form(browser, "/staff/login", "/staff/login", email=pat.email, password="not the password")
    monkeypatch.setenv("PORTAL_LOGIN_LOCK_AFTER", "2")
    get_settings.cache_clear()
    try:
        post_form(browser, "/staff/login", "/staff/login", email=pat.email, password="not the password")
        locked = post_form(browser, "/staff/login", "/staff/login", email=pat.email, password=PASSWORD)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert unknown.status_code == 422 and auth_service.GENERIC_REFUSAL.split(",")[0] in unknown.text
    body = lambda r: refusal_of(r)[1].replace("nobody@example.org", pat.email)  # noqa: E731 - the typed address
    assert refusal_of(unknown)[0] == refusal_of(wrong)[0] == refusal_of(locked)[0] == 422
    assert body(unknown) == body(wrong) == body(locked)
    assert "portal_signin" not in locked.headers.get("set-cookie", ""), "the locked account got no further"


def test_a_wrong_code_is_refused_and_a_used_code_cannot_sign_in_again(browser: TestClient, session: Session,
                                                                      person: Callable[..., Operator]) -> None:
    pat = person()
    first = post_form(browser, "/staff/login", "/staff/login", email=pat.email, password=pat.password)
    code = pat.code()
    wrong = "000000" if code != "000000" else "111111"
    refused = post_form(browser, "/staff/login/code", "/staff/login/code", code=wrong)
    assert refused.status_code == 422 and "There is a problem" in refused.text
    assert post_form(browser, first.headers["location"], "/staff/login/code", code=code).status_code == 303
    with TestClient(browser.app, follow_redirects=False) as other:
        post_form(other, "/staff/login", "/staff/login", email=pat.email, password=pat.password)
        again = post_form(other, "/staff/login/code", "/staff/login/code", code=code)
        assert again.status_code == 422 and "This code was just used: wait for the next one" in again.text


def test_a_new_account_enrols_from_its_link_and_a_qr_code(browser: TestClient, session: Session) -> None:
    invite = auth_service.invite_staff(session, email="new@example.org", role=Role.AGENT, actor="test")
    session.commit()
    page = browser.get(f"/staff/enrol/{invite.token}")
    assert page.status_code == 200 and "new@example.org" in page.text
    short = post_form(browser, f"/staff/enrol/{invite.token}", f"/staff/enrol/{invite.token}", password="short",
                      confirm="short")
    assert short.status_code == 422 and 'href="#password"' in short.text
    chosen = post_form(browser, f"/staff/enrol/{invite.token}", f"/staff/enrol/{invite.token}",
                       password="my own long password", confirm="my own long password")
    assert chosen.status_code == 303 and chosen.headers["location"] == "/staff/login/set-up"
    # Until the second factor is set up the link opens again (a browser closed between the two steps).
    assert browser.get(f"/staff/enrol/{invite.token}").status_code == 200
    set_up = browser.get("/staff/login/set-up")
    assert "<svg" in set_up.text and not re.search(r"<script(?![^>]*\bsrc=)", set_up.text), "no inline script"
    secret = re.search(r'id="secret-key"><code>([A-Z2-7 ]+)</code>', set_up.text).group(1).replace(" ", "")
    done = post_form(browser, "/staff/login/set-up", "/staff/login/set-up", code=pyotp.TOTP(secret).now())
    assert done.status_code == 303 and browser.get("/staff").status_code == 200
    assert browser.get(f"/staff/enrol/{invite.token}").status_code == 404, "the link is spent once set up"
    refused = session.execute(select(AuditEvent).where(AuditEvent.action == "access.refused")).scalars().all()
    assert [e.subject for e in refused] == ["staff enrolment link"]
    actions = set(session.execute(select(AuditEvent.action).where(AuditEvent.subject == f"staff:{invite.user.id}"))
                  .scalars())
    assert {"staff.invite", "staff.password_set", "staff.totp_enrolled", "staff.sign_in"} <= actions


def test_sign_out_and_ending_another_session_take_effect_on_the_next_request(
        app: FastAPI, browser: TestClient, person: Callable[..., Operator]) -> None:
    pat = person()
    sign_in(browser, pat)
    with TestClient(app, follow_redirects=False) as laptop:
        sign_in(laptop, pat)
        page = browser.get("/staff/sessions")
        other_ids = re.findall(r'action="/staff/sessions/(\d+)/end"', page.text)
        assert len(other_ids) == 2
        mine = laptop.get("/staff/sessions")
        laptop_id = next(i for i in other_ids if f'/staff/sessions/{i}/end' in mine.text and
                         re.search(rf'{i}/end"[^<]*<[^>]*>[^<]*<button[^>]*>Sign out', mine.text))
        assert post_form(browser, "/staff/sessions", f"/staff/sessions/{laptop_id}/end").status_code == 303
        assert laptop.get("/staff/sessions").status_code == 303, "the ended session is refused at once"
    assert post_form(browser, "/staff/sessions", "/staff/logout").status_code == 303
    assert browser.get("/staff").headers["location"].startswith("/staff/login")


def test_an_admin_adds_re_roles_and_deactivates_staff(app: FastAPI, browser: TestClient, session: Session,
                                                      person: Callable[..., Operator]) -> None:
    boss = person("boss@example.org", Role.ADMIN)
    agent = person("agent1@example.org", Role.AGENT)
    sign_in(browser, boss)
    added = post_form(browser, "/admin/staff", "/admin/staff", email="newbie@example.org", role="auditor", branch="")
    assert added.status_code == 200
    link = re.search(r'id="enrolment-link">([^<]+)<', added.text).group(1)
    assert "/staff/enrol/" in link
    bad = post_form(browser, "/admin/staff", "/admin/staff", email="not-an-address", role="wizard")
    assert bad.status_code == 422 and 'href="#email"' in bad.text and 'href="#role"' in bad.text
    agent_id = session.execute(select(StaffUser.id).where(StaffUser.email == agent.email)).scalar_one()
    with TestClient(app, follow_redirects=False) as theirs:
        sign_in(theirs, agent)
        page = f"/admin/staff/{agent_id}"
        assert post_form(browser, page, f"{page}/role", role="supervisor").headers["location"].endswith("done=role")
        assert theirs.get("/staff").status_code == 303, "a role change ends their sessions"
        assert post_form(browser, page, f"{page}/deactivate").status_code == 303
    session.expire_all()
    person_row = session.get(StaffUser, agent_id)
    assert person_row.role == "supervisor" and not person_row.active
    boss_id = session.execute(select(StaffUser.id).where(StaffUser.email == boss.email)).scalar_one()
    refused = post_form(browser, f"/admin/staff/{boss_id}", f"/admin/staff/{boss_id}/deactivate")
    assert refused.status_code == 409 and "only active admin" in refused.text
    assert form_token(browser, "/admin/staff")


def test_after_a_reset_only_whoever_opens_the_link_sees_the_new_key(app: FastAPI, browser: TestClient,
                                                                     session: Session,
                                                                     person: Callable[..., Operator]) -> None:
    boss = person("boss@example.org", Role.ADMIN)
    pat = person()
    pat_id = session.execute(select(StaffUser.id).where(StaffUser.email == pat.email)).scalar_one()
    sign_in(browser, boss)
    page = f"/admin/staff/{pat_id}"
    reset = post_form(browser, page, f"{page}/reset-second-factor")
    assert reset.status_code == 200 and "Send them the link below" in reset.text
    link = re.search(r'id="enrolment-link">[^<]*(/staff/enrol/[^<]+)<', reset.text).group(1)
    with TestClient(app, follow_redirects=False) as attacker:
        # Whoever holds the password alone is refused like anyone else, and is shown no key.
        refused = post_form(attacker, "/staff/login", "/staff/login", email=pat.email, password=pat.password)
        assert refused.status_code == 422 and "portal_signin" not in refused.headers.get("set-cookie", "")
        assert attacker.get("/staff/login/set-up").headers["location"] == "/staff/login"
    with TestClient(app, follow_redirects=False) as theirs:
        chosen = post_form(theirs, link, link, password="my own new pass phrase", confirm="my own new pass phrase")
        assert chosen.status_code == 303 and chosen.headers["location"] == "/staff/login/set-up"
        set_up = theirs.get("/staff/login/set-up")
        secret = re.search(r'id="secret-key"><code>([A-Z2-7 ]+)</code>', set_up.text).group(1).replace(" ", "")
        assert secret != pat.secret
        done = post_form(theirs, "/staff/login/set-up", "/staff/login/set-up", code=pyotp.TOTP(secret).now())
        assert done.status_code == 303 and theirs.get("/staff").status_code == 200
    assert browser.get(link).status_code == 404, "the link worked once"


def test_common_passwords_are_refused_and_the_page_says_why(browser: TestClient, session: Session) -> None:
    invite = auth_service.invite_staff(session, email="new@example.org", role=Role.AGENT, actor="test")
    session.commit()
    link = f"/staff/enrol/{invite.token}"
    for common in ("password1234", "Password1234", "QWERTY123456", "iloveyou1234"):
        answer = post_form(browser, link, link, password=common, confirm=common)
        assert answer.status_code == 422 and "one of the most common passwords" in answer.text, common
    assert post_form(browser, link, link, password="lamp river quietly", confirm="lamp river quietly"
                     ).status_code == 303


def test_an_admin_sets_a_persons_branch(browser: TestClient, session: Session,
                                        person: Callable[..., Operator]) -> None:
    boss = person("boss@example.org", Role.ADMIN)
    viewer = person("viewer@example.org", Role.BRANCH_VIEWER)
    viewer_id = session.execute(select(StaffUser.id).where(StaffUser.email == viewer.email)).scalar_one()
    sign_in(browser, boss)
    page = f"/admin/staff/{viewer_id}"
    assert post_form(browser, page, f"{page}/branch", branch="atlantis").status_code == 422
    done = post_form(browser, page, f"{page}/branch", branch="kent")
    assert done.status_code == 303 and done.headers["location"].endswith("done=branch")
    shown = browser.get(done.headers["location"])
    assert re.search(r"<dt>Branch</dt><dd>Kent</dd>", shown.text) and "The branch is set" in shown.text
    session.expire_all()
    assert session.get(StaffUser, viewer_id).branch_id is not None
    changed = session.execute(select(AuditEvent).where(AuditEvent.action == "staff.branch_changed")).scalars().all()
    assert [(e.actor, e.subject) for e in changed] == [(boss.email, f"staff:{viewer_id}")]
