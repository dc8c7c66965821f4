"""Asking for a call back and cancelling it, in a real browser, in English and Welsh."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.test_check_status import (  # noqa: F401 - code_worker is a fixture
    a_member,
    axe_clean,
    code_for,
    code_worker,
    latest_outbox_id,
    no_horizontal_scroll,
)

pytestmark = pytest.mark.browser


def window(days: int = 1) -> tuple[str, str]:
    start = (datetime.now(ZoneInfo("Europe/London")) + timedelta(days=days)).replace(hour=19, minute=0)
    return start.strftime("%Y-%m-%dT%H:%M"), (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.usefixtures("code_worker")
def test_anyone_can_ask_for_a_call_back_and_cancel_it(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    before = latest_outbox_id()
    page.goto(live_server + "/callback")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ask us to call you")
    axe_clean(page)
    start, end = window()
    page.get_by_label("Your name").fill("Alex Morgan")
    page.get_by_label("Phone number to call").fill("07700 900951")
    page.get_by_label("From").fill(start)
    page.get_by_label("Until").fill(end)
    page.get_by_label("What would you like to talk about?").select_option("scam")
    page.get_by_label("It is urgent").check()
    page.get_by_label("A passphrase for us to say when we call").fill("red kite")
    page.get_by_role("button", name="Ask us to call you").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("We will call you")
    reference = page.locator(".reference").inner_text()
    assert re.fullmatch(r"CB-[0-9A-Z]{4}-[0-9A-Z]{4}", reference), reference
    axe_clean(page)
    # The confirmation text reached the phone given, with the reference.
    wait_for_text_to("+447700900951", reference, after=before)

    # Change the time: the form comes filled in for whoever made the request.
    page.get_by_role("link", name="Change the time").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Change the time of your call")
    axe_clean(page)
    later_start, later_end = window(days=2)
    page.get_by_label("From").fill(later_start)
    page.get_by_label("Until").fill(later_end)
    page.get_by_role("button", name="Change the time").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("We have changed the time of your call")
    expect(page.locator(".reference")).to_have_text(reference)

    # Cancelling asks first, with the request shown; nothing to type.
    page.get_by_role("link", name="Cancel this request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel a callback request")
    expect(page.get_by_text("Are you sure you want to cancel this request?")).to_be_visible()
    axe_clean(page)
    page.get_by_role("button", name="Yes, cancel the request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your request is cancelled")
    axe_clean(page)


def wait_for_text_to(to: str, needle: str, *, after: int, timeout: float = 15) -> None:
    import time

    from app.db import default_session_factory, session_scope
    from app.providers import outbox

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(default_session_factory()) as session:
            if any(needle in e.body for e in outbox.latest(session, to=to, last=5) if e.id > after):
                return
        time.sleep(0.1)
    raise AssertionError(f"no message to {to} containing {needle}")


@pytest.mark.usefixtures("code_worker")
def test_a_signed_in_member_finds_the_form_filled_in_and_sees_their_request(
        page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    member = a_member(affected=True, nth=1)
    before = latest_outbox_id()
    page.goto(live_server + "/check")
    page.get_by_label("Membership number or email address").fill(member["number"])
    page.get_by_role("button", name="Continue").click()
    code, _ = code_for(member["email"], after=before)
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("link", name="Ask us to call you").last.click()
    expect(page.get_by_label("Your name")).not_to_have_value("")
    page.get_by_label("Phone number to call").fill("07700 900952")
    page.get_by_label("A passphrase for us to say when we call").fill("curlew")
    page.get_by_role("button", name="Ask us to call you").click()
    reference = page.locator(".reference").inner_text()
    page.goto(live_server + "/callback")
    expect(page.get_by_role("heading", level=1)).to_have_text("You have already asked us to call you")
    expect(page.locator(".reference")).to_have_text(reference)
    axe_clean(page)
    # Their status page shows the request, with change and cancel; cancelling asks first.
    page.goto(live_server + "/status")
    section = page.locator("section.callback")
    expect(section.locator(".reference")).to_have_text(reference)
    expect(section).to_contain_text("Waiting for our call")
    axe_clean(page)
    section.get_by_role("link", name="Cancel this request").click()
    page.get_by_role("link", name="No, keep it").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your status")
    page.locator("section.callback").get_by_role("link", name="Cancel this request").click()
    page.get_by_role("button", name="Yes, cancel the request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your request is cancelled")
    page.goto(live_server + "/status")
    expect(page.locator("section.callback")).to_contain_text("Cancelled")


def test_in_welsh_on_a_320_pixel_phone_without_javascript(browser, live_server: str) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 320, "height": 640}, java_script_enabled=False, locale="cy-GB")
    try:
        page = context.new_page()
        page.goto(live_server + "/callback?lang=cy")
        expect(page.get_by_role("heading", level=1)).to_have_text("Gofyn i ni eich ffonio")
        no_horizontal_scroll(page)
        start, end = window(days=2)
        page.get_by_label("Eich enw").fill("Rhys ap Gwilym")
        page.get_by_label("Rhif ffôn i'w ffonio").fill("07700 900953")
        page.get_by_label("O", exact=True).fill(start)
        page.get_by_label("Tan", exact=True).fill(end)
        page.get_by_label("Cyfrinymadrodd i ni ei ddweud pan fyddwn yn ffonio").fill("barcud")
        page.get_by_role("button", name="Gofyn i ni eich ffonio").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Byddwn yn eich ffonio")
        no_horizontal_scroll(page)
        reference = page.locator(".reference").inner_text()
        page.goto(live_server + "/callback/cancel")
        page.get_by_label("Cyfeirnod").fill(reference)
        page.get_by_label("Y rhif ffôn a roesoch i ni").fill("07700900953")
        page.get_by_role("button", name="Canslo'r cais").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Mae eich cais wedi'i ganslo")
        assert "Your request" not in page.content()
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/callback?lang=en", "/callback?lang=cy", "/callback/cancel?lang=cy",
                                  "/callback/change?lang=cy"])
def test_no_axe_violations_on_the_forms_with_errors(page, live_server: str, path: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + path)
    page.locator("form[method=post] button[type=submit]").first.click()
    expect(page.get_by_role("alert")).to_be_visible()
    no_horizontal_scroll(page)
    axe_clean(page)


@pytest.mark.usefixtures("code_worker")
def test_a_request_made_before_signing_in_is_on_status_and_asking_again_says_so(
        page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    member = a_member(affected=True, nth=2)
    assert member["phone"], "a demo member with a phone on file"

    def ask(tab, days: int) -> None:  # type: ignore[no-untyped-def]
        start, end = window(days)
        tab.get_by_label("Your name").fill("Alex Morgan")
        tab.get_by_label("Phone number to call").fill(member["phone"])
        tab.get_by_label("From").fill(start)
        tab.get_by_label("Until").fill(end)
        tab.get_by_label("A passphrase for us to say when we call").fill("barn owl")
        tab.get_by_role("button", name="Ask us to call you").click()

    # Before signing in: a request with the phone on file.
    page.goto(live_server + "/callback")
    ask(page, 1)
    reference = page.locator(".reference").inner_text()
    # Signing in with the code: their status page shows that request; cancelling it needs nothing typed.
    before = latest_outbox_id()
    page.goto(live_server + "/check")
    page.get_by_label("Membership number or email address").fill(member["number"])
    page.get_by_role("button", name="Continue").click()
    code, _ = code_for(member["email"], after=before)
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_role("button", name="Continue").click()
    page.goto(live_server + "/status")
    section = page.locator("section.callback")
    expect(section.locator(".reference")).to_have_text(reference)
    expect(section.get_by_role("link", name="Change the time")).to_be_visible()
    section.get_by_role("link", name="Cancel this request").click()
    page.get_by_role("button", name="Yes, cancel the request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your request is cancelled")
    page.goto(live_server + "/status")
    expect(page.locator("section.callback")).to_contain_text("Cancelled")

    # The form open in two tabs, sent from both with different times: the second says nothing new was taken.
    second = page.context.new_page()
    second.goto(live_server + "/callback")
    page.goto(live_server + "/callback")
    ask(page, 1)
    reference = page.locator(".reference").inner_text()
    ask(second, 2)
    expect(second.get_by_role("heading", level=1)).to_have_text("You have already asked us to call you")
    expect(second.get_by_role("status")).to_contain_text("We have not taken the request you just sent")
    expect(second.locator("#already")).to_contain_text(f"(reference {reference})")
    axe_clean(second)
    second.get_by_role("link", name="Cancel this request").click()
    second.get_by_role("button", name="Yes, cancel the request").click()
    expect(second.get_by_role("heading", level=1)).to_have_text("Your request is cancelled")
