"""The helpline in real Chromium: an agent signs in with a code, takes next, sees the passphrase and records
the call; a supervisor reassigns a request; a branch viewer sees small counts suppressed; an auditor reads
the trail. axe-core clean on every page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from app.auth.models import Role, StaffUser
from app.callbacks.models import CallbackRequest, Priority
from app.db import default_session_factory, session_scope
from app.members.models import Member
from tests.browser.staff import make_staff, sign_in
from tests.browser.test_check_status import axe_clean
from tests.callbacks.queue_helpers import waiting

pytestmark = pytest.mark.browser


def _seed() -> tuple[str, str, int]:
    """An urgent request with no member, and three requests of members of one branch; (urgent's reference,
    a branch request's reference, that branch's id)."""
    with session_scope(default_session_factory()) as s:
        urgent = waiting(s, priority=Priority.URGENT, passphrase="amber otter", phone="+447700900888")
        branch_id = s.execute(select(Member.branch_id).group_by(Member.branch_id)
                              .order_by(func.count().desc(), Member.branch_id).limit(1)).scalar_one()
        members = s.execute(select(Member.id).where(Member.branch_id == branch_id).limit(3)).scalars().all()
        assert len(members) == 3, "the demo's biggest branch has a few members"
        branch_requests = [waiting(s, member_id=m) for m in members]
        return urgent.reference, branch_requests[0].reference, branch_id


def test_agent_supervisor_branch_viewer_and_auditor(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    urgent_ref, branch_ref, branch_id = _seed()
    agent = make_staff("queue.agent@example.org", Role.AGENT)
    sign_in(page, live_server, agent, next_path="/staff/queue")
    expect(page.get_by_role("heading", level=1)).to_have_text("Callback queue")
    expect(page.get_by_role("cell", name=urgent_ref)).to_be_visible()
    axe_clean(page)
    page.get_by_role("button", name="Take next").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Call {urgent_ref}")
    expect(page.locator("#passphrase")).to_have_text("amber otter")
    expect(page.locator("#phone")).to_have_text("07700 900888")
    expect(page.locator("#phone")).to_have_attribute("href", "tel:+447700900888")
    axe_clean(page)
    page.get_by_label("What happened").select_option("follow_up")
    page.get_by_label("Notes").fill("Wants to know about the card details")
    page.get_by_role("button", name="Record the call").click()
    expect(page.get_by_text("The call was recorded.")).to_be_visible()
    axe_clean(page)
    with session_scope(default_session_factory()) as s:
        done = s.execute(select(CallbackRequest).where(CallbackRequest.reference == urgent_ref)).scalar_one()
        assert done.attempts == 1 and done.status == "waiting" and done.next_attempt_at is not None

    boss = make_staff("queue.boss@example.org", Role.SUPERVISOR)
    page.context.clear_cookies()
    sign_in(page, live_server, boss, next_path="/staff/queue/overview")
    expect(page.get_by_role("heading", level=1)).to_have_text("Helpline overview")
    axe_clean(page)
    page.get_by_label(f"Agent for {branch_ref}").select_option(label=agent.email)
    page.get_by_role("button", name=f"Reassign {branch_ref}").click()
    expect(page.get_by_role("button", name=f"Release {branch_ref}")).to_be_visible()
    with session_scope(default_session_factory()) as s:
        moved = s.execute(select(CallbackRequest).where(CallbackRequest.reference == branch_ref)).scalar_one()
        who = s.execute(select(StaffUser.id).where(StaffUser.email == agent.email)).scalar_one()
        assert moved.status == "claimed" and moved.claimed_by == who

    viewer = make_staff("branch.viewer@example.org", Role.BRANCH_VIEWER, branch_id=branch_id)
    page.context.clear_cookies()
    sign_in(page, live_server, viewer, next_path="/staff/branch")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("Callbacks for "))
    row = page.get_by_role("row", name=re.compile("^Waiting"))
    expect(row).to_contain_text("Fewer than 5 (not shown)")
    expect(page.get_by_role("row", name=re.compile("^Being called"))).to_contain_text("Fewer than 5 (not shown)")
    axe_clean(page)

    auditor = make_staff("the.auditor@example.org", Role.AUDITOR)
    page.context.clear_cookies()
    sign_in(page, live_server, auditor, next_path="/admin/audit?action=callback.*")
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit trail")
    expect(page.locator("#chain")).to_contain_text("The chain is intact")
    expect(page.get_by_role("cell", name="callback.reassigned")).to_be_visible()
    axe_clean(page)


def _background_requests(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The URLs the page fetched as background refreshes, as they happen."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if r.headers.get("x-background-refresh") == "1" else None)
    return seen


def test_the_queue_refresh_can_be_paused_by_keyboard_and_stays_paused(
        page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    agent = make_staff("refresh.agent@example.org", Role.AGENT)
    page.clock.install()
    sign_in(page, live_server, agent, next_path="/staff/queue")
    expect(page.get_by_role("heading", level=1)).to_have_text("Callback queue")
    refreshes = _background_requests(page)
    toggle = page.get_by_role("button", name="Pause automatic refresh")
    expect(page.get_by_text("This page refreshes every 30 seconds.")).to_be_visible()
    toggle.focus()
    page.keyboard.press("Enter")
    resume = page.get_by_role("button", name="Resume automatic refresh")
    expect(resume).to_be_focused()
    expect(page.get_by_text("Automatic refresh is paused.")).to_be_visible()
    page.reload()
    expect(page.get_by_role("button", name="Resume automatic refresh")).to_be_visible()  # remembered
    page.clock.run_for(95_000)
    assert refreshes == [], "nothing is fetched while the refresh is paused"

    with session_scope(default_session_factory()) as s:
        arrived = waiting(s, priority=Priority.URGENT).reference
    page.get_by_role("button", name="Resume automatic refresh").focus()
    page.keyboard.press("Space")
    expect(page.get_by_role("button", name="Pause automatic refresh")).to_be_visible()
    with page.expect_response(lambda r: r.request.headers.get("x-background-refresh") == "1"):
        page.clock.run_for(31_000)
    expect(page.get_by_role("cell", name=arrived)).to_be_visible()
    assert all(url == live_server + "/staff/queue" for url in refreshes), refreshes
    axe_clean(page)


def test_without_javascript_the_queue_has_only_the_refresh_link(
        browser, live_server: str) -> None:  # type: ignore[no-untyped-def]
    agent = make_staff("nojs.agent@example.org", Role.AGENT)
    context = browser.new_context(locale="en-GB", java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, live_server, agent, next_path="/staff/queue")
        expect(page.get_by_role("heading", level=1)).to_have_text("Callback queue")
        expect(page.get_by_role("link", name="Refresh now")).to_be_visible()
        expect(page.locator("[data-refresh-toggle]")).to_be_hidden()
        expect(page.get_by_text("This page refreshes every")).to_have_count(0)
    finally:
        context.close()


def _fits(page, width: int = 320) -> None:  # type: ignore[no-untyped-def]
    scroll = page.evaluate("document.documentElement.scrollWidth")
    # What sticks out (a table inside its own scroll region may, the page may not), to say in the failure.
    wide = page.evaluate("""() => Array.from(document.querySelectorAll('body *'))
        .filter(e => e.getBoundingClientRect().right > innerWidth && !e.closest('.table-scroll *'))
        .slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id)""")
    assert scroll <= width, f"{page.url} is {scroll}px wide at {width}px: {wide}"


def test_staff_pages_reflow_at_320_pixels(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    with session_scope(default_session_factory()) as s:
        request_ref = waiting(s, priority=Priority.URGENT, passphrase="narrow heron", phone="+447700900777").reference
        for _ in range(2):
            waiting(s)
    page.set_viewport_size({"width": 320, "height": 640})
    boss = make_staff("narrow.boss@example.org", Role.SUPERVISOR)
    sign_in(page, live_server, boss, next_path="/staff/queue")
    expect(page.get_by_role("heading", level=1)).to_have_text("Callback queue")
    _fits(page)
    page.get_by_role("button", name="Take next").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Call CB-")
    _fits(page)
    page.get_by_label("What happened").select_option("no_answer")
    page.get_by_label("Notes").fill("A long note without spaces: " + "x" * 80)
    page.get_by_role("button", name="Record the call").click()
    page.goto(live_server + "/staff/queue/overview")
    expect(page.get_by_role("heading", level=1)).to_have_text("Helpline overview")
    _fits(page)
    axe_clean(page)
    assert request_ref

    auditor = make_staff("narrow.auditor@example.org", Role.AUDITOR)
    page.context.clear_cookies()
    sign_in(page, live_server, auditor, next_path="/admin/audit")
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit trail")
    _fits(page)
    admin = make_staff("narrow.admin@example.org", Role.ADMIN)
    page.context.clear_cookies()
    sign_in(page, live_server, admin, next_path="/admin/staff")
    expect(page.get_by_role("heading", level=1)).to_have_text("Staff accounts")
    _fits(page)
