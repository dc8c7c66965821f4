"""Verify a message in a real browser, for the one-off messages (a callback confirmation), a callback request's
own CB- reference, and an answer's link copied into another browser. A module of its own: its live server
counts these checks apart from the notice checks' request limit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def confirmation(live_server: str) -> Iterator[str]:
    """The reference printed at the end of a callback confirmation, sent as the worker sends it."""
    from app.db import default_session_factory, session_scope
    from app.kit.ratelimit import LocalLimiter
    from app.messages import service as transactional
    from app.providers.outbox import OutboxEmailSender, OutboxSmsSender

    factory = default_session_factory()
    with session_scope(factory) as session:
        message = transactional.queue_message(session, kind="callback_confirmation", channel="sms",
                                              to="+447700900555", body="We will call you back.", enqueue_send=False)
        reference, message_id = str(message.reference), message.id
    transactional.send_one(factory, message_id, email_sender=OutboxEmailSender(factory),
                           sms_sender=OutboxSmsSender(factory), limiter_for=lambda _channel: LocalLimiter(10_000))
    yield reference


def check(page, reference: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_label("Reference code").fill(reference)
    page.get_by_role("button", name="Check the reference").click()
    page.wait_for_load_state()


def test_a_callback_confirmation_s_reference_is_ours_and_a_cb_reference_is_explained(  # type: ignore[no-untyped-def]
        page, live_server: str, confirmation: str) -> None:
    page.goto(live_server + "/verify-message")
    expect(page.get_by_text("one-time codes and callback confirmations alike")).to_be_visible()
    check(page, confirmation.lower().replace("-", " "))
    expect(page.get_by_role("heading", level=1)).to_have_text("This message is from us")
    expect(page.get_by_text("We sent it by text message on")).to_be_visible()
    page.goto(live_server + "/verify-message")
    check(page, "cb 7k2q 9m4t")
    expect(page.get_by_role("alert")).to_contain_text("the reference of a callback request")


def test_a_copied_answer_shows_nothing_in_another_browser(browser, page, live_server: str,  # type: ignore[no-untyped-def]
                                                          confirmation: str) -> None:
    page.goto(live_server + "/verify-message")
    check(page, confirmation)
    expect(page.get_by_role("heading", level=1)).to_have_text("This message is from us")
    link = page.url
    context = browser.new_context(locale="en-GB")
    try:
        other = context.new_page()
        other.goto(link)
        expect(other.get_by_role("heading", level=1)).to_have_text("Check a message is from us")
        expect(other.get_by_text(confirmation)).to_have_count(0)
    finally:
        context.close()
