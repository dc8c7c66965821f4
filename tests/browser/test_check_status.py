"""Checking your status in a real browser: the identifier, the code read from the outbox, the status page.

The live server runs without a worker, so `code_worker` runs the transactional queue's actors in this
process, on the live server's database, as `portal worker` would.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def code_worker(live_server: str) -> Iterator[None]:
    import dramatiq

    from app.lookup.service import forget_incident_advice
    from app.messages import tasks as transactional_tasks
    from app.worker import Queues, broker, load_actors

    load_actors()
    forget_incident_advice()
    # Senders are built once per process: build them again for this module's database.
    transactional_tasks.email_sender.cache_clear()
    transactional_tasks.sms_sender.cache_clear()
    worker = dramatiq.Worker(broker, queues={Queues.TRANSACTIONAL, Queues.MESSAGES}, worker_threads=2,
                             worker_timeout=100)
    worker.start()
    yield
    worker.stop()


def a_member(*, affected: bool = True, with_email: bool = True, nth: int = 0) -> dict[str, Any]:
    """The nth demo member of the live server's database with or without an exposure and an email."""
    from sqlalchemy import text

    from app.db import default_session_factory, session_scope
    from app.members import service as member_service

    with session_scope(default_session_factory()) as session:
        rows = session.execute(text(
            "SELECT m.id, m.membership_number, EXISTS (SELECT 1 FROM exposures e WHERE e.member_id = m.id) "
            "FROM members m WHERE (m.email_enc IS NOT NULL) = :email ORDER BY m.id"), {"email": with_email}).all()
        matching = [(member_id, number) for member_id, number, exposed in rows if bool(exposed) == affected]
        assert len(matching) > nth, "no such demo member"
        member_id, number = matching[nth]
        profile = member_service.profile(session, member_id)
        assert profile is not None
        return {"number": number, "email": profile.email, "phone": profile.phone}


def code_for(to: str, *, after: int = 0, timeout: float = 15) -> tuple[str, int]:
    """The code in the newest outbox message to `to` newer than message id `after` (as `portal outbox` shows)."""
    from app.db import default_session_factory, session_scope
    from app.providers import outbox

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(default_session_factory()) as session:
            entries = [e for e in outbox.latest(session, to=to, last=5) if e.id > after]
        if entries:
            match = re.search(r"\b(\d{6})\b", entries[0].body)
            assert match, entries[0].body
            return match.group(1), entries[0].id
        time.sleep(0.1)
    raise AssertionError(f"no code reached the outbox for {to}")


def latest_outbox_id() -> int:
    from app.db import default_session_factory, session_scope
    from app.providers import outbox

    with session_scope(default_session_factory()) as session:
        entries = outbox.latest(session, last=1)
    return entries[0].id if entries else 0


def axe_clean(page) -> None:  # type: ignore[no-untyped-def]
    from tests.browser.test_public_pages import _axe_violations

    report = _axe_violations(page)
    assert not report, "\n" + report


def no_horizontal_scroll(page) -> None:  # type: ignore[no-untyped-def]
    sizes = page.evaluate("({scroll: document.scrollingElement.scrollWidth, inner: window.innerWidth})")
    assert sizes["scroll"] <= sizes["inner"], f"horizontal scroll on {page.url}: {sizes}"


def test_a_member_checks_their_status_by_keyboard_with_the_code_from_the_outbox(
        page, live_server: str, code_worker: None) -> None:  # type: ignore[no-untyped-def]
    member = a_member(affected=True)
    before = latest_outbox_id()
    page.goto(live_server + "/check")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check if you are affected")
    axe_clean(page)
    field = page.get_by_label("Membership number or email address")
    field.focus()
    page.keyboard.type(member["number"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your code")
    code_field = page.get_by_label("Code", exact=True)
    expect(code_field).to_have_attribute("autocomplete", "one-time-code")
    expect(code_field).to_have_attribute("inputmode", "numeric")
    axe_clean(page)

    code, _ = code_for(member["email"], after=before)
    code_field.focus()
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your status")
    expect(page.get_by_text("Your details were affected.").first).to_be_visible()
    expect(page.get_by_role("heading", level=3, name="National Insurance number").first).to_be_visible()
    expect(page.get_by_role("link", name="Ask us to call you").last).to_be_visible()
    axe_clean(page)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    page.goto(live_server + "/status")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check if you are affected")


def test_a_wrong_code_shows_an_error_summary_that_leads_to_the_field(
        page, live_server: str, code_worker: None) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + "/check")
    page.get_by_label("Membership number or email address").fill("999999999")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code", exact=True).fill("12345")
    page.get_by_role("button", name="Continue").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("There is a problem")
    expect(page).to_have_title(re.compile(r"^Error: "))
    axe_clean(page)
    summary.get_by_role("link").click()
    expect(page.get_by_label("Code", exact=True)).to_be_focused()


def test_the_check_in_welsh_on_a_320_pixel_phone(browser, live_server: str, code_worker: None) -> None:  # type: ignore[no-untyped-def]
    member = a_member(affected=True)
    context = browser.new_context(viewport={"width": 320, "height": 640}, is_mobile=True, has_touch=True,
                                  locale="cy-GB")
    try:
        page = context.new_page()
        before = latest_outbox_id()
        page.goto(live_server + "/check?lang=cy")
        expect(page.locator("html")).to_have_attribute("lang", "cy")
        no_horizontal_scroll(page)
        axe_clean(page)
        page.get_by_label("Rhif aelodaeth neu gyfeiriad e-bost").fill(member["email"])
        page.get_by_role("button", name="Parhau").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Rhowch eich cod")
        no_horizontal_scroll(page)
        axe_clean(page)
        code, _ = code_for(member["email"], after=before)
        page.get_by_label("Cod", exact=True).fill(code)
        page.get_by_role("button", name="Parhau").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Eich statws")
        expect(page.get_by_text("Effeithiwyd ar eich manylion.").first).to_be_visible()
        expect(page.get_by_role("heading", level=3, name="Rhif Yswiriant Gwladol").first).to_be_visible()
        no_horizontal_scroll(page)
        axe_clean(page)
        for english in ("Your status", "Sign out", "Messages we sent you", "Talk to us"):
            assert english not in page.content()
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/check", "/check?lang=cy"])
def test_the_check_page_works_without_javascript(browser, live_server: str, path: str) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(java_script_enabled=False, locale="en-GB")
    try:
        page = context.new_page()
        page.goto(live_server + path)
        page.locator("#identifier").fill("123")
        page.locator("button[type=submit]").first.click()
        expect(page.locator("h1")).to_have_text(re.compile("Enter your code|Rhowch eich cod"))
    finally:
        context.close()
