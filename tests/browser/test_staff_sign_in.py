"""Staff sign-in in real Chromium: enrol from the link and a QR code, sign out, sign in again with a fresh
code, see and end another session, be refused another role's page; axe-core clean on every page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.auth.models import Role
from tests.browser.staff import PASSWORD, invite, make_staff
from tests.browser.staff import sign_in as _sign_in
from tests.browser.test_check_status import axe_clean
from tests.operators import Operator

pytestmark = pytest.mark.browser


def test_a_new_agent_enrols_signs_out_and_back_in_and_ends_another_session(  # type: ignore[no-untyped-def]
        browser, page, live_server: str) -> None:
    link = invite("new.agent@example.org", Role.AGENT, base_url=live_server)
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose your password")
    axe_clean(page)
    page.get_by_label("New password").fill("short")
    page.get_by_label("Type it again").fill("short")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
    axe_clean(page)
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Type it again").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()

    # First sign-in: the QR code is drawn on the page, and the key is there as text for typing by hand.
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up your authenticator app")
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    axe_clean(page)
    secret = page.locator("#secret-key code").inner_text().replace(" ", "")
    me = Operator("new.agent@example.org", PASSWORD, secret)
    page.get_by_label("Code from your authenticator app").fill(me.code())
    page.get_by_role("button", name="Finish setting up and sign in").click()
    expect(page.get_by_text("You are signed in as new.agent@example.org")).to_be_visible()
    axe_clean(page)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    axe_clean(page)
    page.goto(live_server + "/staff/sessions")
    expect(page).to_have_url(re.compile(r"/staff/login\?next=/staff/sessions"))

    # A wrong code, then a fresh one.
    page.get_by_label("Email address").fill(me.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code from your authenticator app").fill("000000" if me.code() != "000000" else "111111")
    me.last_step -= 1  # that code was not used: the next one can be the same step
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
    axe_clean(page)
    page.get_by_label("Code from your authenticator app").fill(me.code())
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server + "/staff/sessions")

    # Signed in on a second device too: it shows on the sessions page, and ending it signs that device out.
    other = browser.new_context(locale="en-GB")
    try:
        laptop = other.new_page()
        _sign_in(laptop, live_server, me)
        expect(laptop.get_by_text("You are signed in as new.agent@example.org")).to_be_visible()
        page.reload()
        ends = page.get_by_role("button", name=re.compile("^End this session"))
        expect(ends).to_have_count(1)
        axe_clean(page)
        ends.click()
        expect(page.get_by_role("button", name=re.compile("^End this session"))).to_have_count(0)
        laptop.goto(live_server + "/staff")
        expect(laptop).to_have_url(re.compile(r"/staff/login"))
    finally:
        other.close()

    # Another role's page is refused, plainly.
    response = page.goto(live_server + "/admin/staff")
    assert response is not None and response.status == 403
    expect(page.get_by_text("You do not have permission to see this page.")).to_be_visible()
    axe_clean(page)


def test_an_admin_adds_a_person_and_manages_their_account(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    boss = make_staff("boss@example.org", Role.ADMIN)
    _sign_in(page, live_server, boss)
    page.get_by_role("link", name="Staff accounts").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Staff accounts")
    axe_clean(page)
    page.get_by_role("button", name="Add and make an enrolment link").click()
    expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
    axe_clean(page)
    page.get_by_label("Work email address").fill("helper@example.org")
    page.get_by_label("Role", exact=True).select_option("supervisor")
    page.get_by_role("button", name="Add and make an enrolment link").click()
    expect(page.locator("#enrolment-link")).to_contain_text("/staff/enrol/")
    page.get_by_role("link", name="helper@example.org").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("helper@example.org")
    axe_clean(page)
    page.get_by_label("Branch", exact=True).select_option("kent")
    page.get_by_role("button", name="Set branch").click()
    expect(page.get_by_text("The branch is set")).to_be_visible()
    axe_clean(page)
    page.get_by_role("button", name="Reset their authenticator app and make a link").click()
    expect(page.locator("#enrolment-link")).to_contain_text("/staff/enrol/")
    axe_clean(page)
    page.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_text("They can no longer sign in")).to_be_visible()
    axe_clean(page)
