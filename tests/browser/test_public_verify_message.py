"""Verify a message in a real browser: genuine and not ours, in English and Welsh, by keyboard, without JavaScript."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser
NOT_OURS = "7K2Q-9M4T-XH3D"


@pytest.fixture(scope="module")
def references(live_server: str) -> Iterator[dict[str, str]]:
    """A reference of an email and of a text message the demo campaign really sent, through the outbox."""
    from sqlalchemy import select

    from app.auth import service as auth_service
    from app.auth.models import Role
    from app.config import ROOT
    from app.db import default_session_factory, session_scope
    from app.demo.service import INCIDENT_CODE
    from app.kit.ratelimit import LocalLimiter
    from app.notices import planning, sending
    from app.notices import service as notice_service
    from app.notices.models import Channel, Delivery
    from app.providers.outbox import OutboxEmailSender, OutboxSmsSender

    factory = default_session_factory()
    with session_scope(factory) as session:
        for email in ("writer@example.org", "approver@example.org"):
            auth_service.create_staff(session, email=email, role=Role.ADMIN, password="browser tests only",
                                      actor="test")
        campaign = notice_service.create_campaign(
            session, name="browser notice", incident_code=INCIDENT_CODE, channels=[Channel.EMAIL, Channel.SMS],
            audience=notice_service.Audience(branches=["metropolitan"]),
            templates=notice_service.load_template_dir(ROOT / "templates" / "notices" / "breach"),
            author_email="writer@example.org", sms_fallback=False)
        notice_service.approve(session, campaign.id, approver_email="approver@example.org")
        notice_service.send(session, campaign.id, actor="approver@example.org")
        campaign_id = campaign.id
    assert planning.plan_campaign(factory, campaign_id)
    email, sms = OutboxEmailSender(factory), OutboxSmsSender(factory)
    for channel in ("email", "sms"):
        for _ in range(100):
            if sending.send_chunk(factory, campaign_id, channel, email_sender=email, sms_sender=sms,
                                  limiter=LocalLimiter(10_000)) != 0.0:
                break
    found = {}
    with session_scope(factory) as session:
        for channel in ("email", "sms"):
            found[channel] = session.execute(
                select(Delivery.reference).where(Delivery.campaign_id == campaign_id, Delivery.channel == channel,
                                                 Delivery.sent_at.is_not(None)).limit(1)).scalar_one()
    yield found


def check(page, reference: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_label("Reference code").fill(reference)
    page.get_by_role("button", name="Check the reference").click()
    page.wait_for_load_state()


def test_a_genuine_email_reference_typed_as_read_aloud(page, live_server: str,  # type: ignore[no-untyped-def]
                                                       references: dict[str, str]) -> None:
    page.goto(live_server + "/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Check a message is from us").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check a message is from us")
    check(page, references["email"].lower().replace("-", " "))
    expect(page.get_by_role("heading", level=1)).to_have_text("This message is from us")
    expect(page.get_by_text(references["email"])).to_be_visible()
    expect(page.get_by_text("We sent it by email on")).to_be_visible()


def test_a_reference_that_is_not_ours_says_how_to_report_it(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + "/verify-message")
    check(page, NOT_OURS)
    expect(page.get_by_role("heading", level=1)).to_have_text("This message is not from us")
    expect(page.get_by_role("link", name="report@phishing.gov.uk")).to_have_attribute(
        "href", "mailto:report@phishing.gov.uk")
    expect(page.get_by_text("Forward suspicious text messages to 7726.")).to_be_visible()
    page.get_by_role("link", name="Check another message").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check a message is from us")


def test_the_same_in_welsh(page, live_server: str, references: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + "/verify-message?lang=cy")
    expect(page.locator("html")).to_have_attribute("lang", "cy")
    page.get_by_label("Cod cyfeirnod").fill(f"Cyf {references['sms']}")
    page.get_by_role("button", name="Gwirio'r cyfeirnod").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mae'r neges hon gennym ni")
    expect(page.get_by_text("Fe'i hanfonwyd gennym drwy neges destun ar")).to_be_visible()
    page.goto(live_server + "/verify-message")
    page.get_by_label("Cod cyfeirnod").fill(NOT_OURS)
    page.get_by_role("button", name="Gwirio'r cyfeirnod").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Nid yw'r neges hon gennym ni")


def test_a_mistyped_reference_is_explained_and_the_summary_leads_to_the_field(  # type: ignore[no-untyped-def]
        page, live_server: str) -> None:
    page.goto(live_server + "/verify-message")
    check(page, "PF-7K2Q")
    expect(page).to_have_title("Error: Check a message is from us – Police Staff Association")
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("A reference from us has 12 letters and numbers")
    summary.get_by_role("link").click()
    expect(page.get_by_label("Reference code")).to_be_focused()
    expect(page.get_by_label("Reference code")).to_have_value("PF-7K2Q")


def test_the_form_works_by_keyboard_alone(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + "/verify-message")
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "reference":
            break
    expect(page.get_by_label("Reference code")).to_be_focused()
    page.keyboard.type(NOT_OURS)
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    expect(page.get_by_role("heading", level=1)).to_have_text("This message is not from us")


def test_the_form_works_without_javascript(browser, live_server: str,  # type: ignore[no-untyped-def]
                                           references: dict[str, str]) -> None:
    context = browser.new_context(java_script_enabled=False, locale="en-GB")
    try:
        page = context.new_page()
        page.goto(live_server + "/verify-message")
        check(page, references["email"])
        expect(page.get_by_role("heading", level=1)).to_have_text("This message is from us")
        page.goto(live_server + "/verify-message")
        check(page, "")
        expect(page.get_by_role("alert")).to_contain_text("Enter the reference code from the message")
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_the_genuine_answer_is_accessible_and_fits_320_pixels(browser, live_server: str,  # type: ignore[no-untyped-def]
                                                              references: dict[str, str], lang: str) -> None:
    from tests.browser.test_public_pages import _axe_violations

    context = browser.new_context(locale="en-GB")
    try:
        page = context.new_page()
        page.set_viewport_size({"width": 320, "height": 640})
        page.goto(f"{live_server}/verify-message?lang={lang}")
        page.locator("#reference").fill(references["email"])
        page.locator("form[action='/verify-message'] button[type=submit]").click()
        page.wait_for_load_state("networkidle")
        expect(page.locator(".panel--genuine")).to_be_visible()
        sizes = page.evaluate("({scroll: document.scrollingElement.scrollWidth,"
                              " client: document.scrollingElement.clientWidth})")
        assert sizes["scroll"] <= sizes["client"] <= 320, sizes
        report = _axe_violations(page)
        assert not report, "\n" + report
    finally:
        context.close()
