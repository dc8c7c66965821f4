"""The public pages as a member sees them in a real browser: content, language, keyboard, accessibility."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

INCIDENT_TITLE = "Cyber attack on our headquarters systems"
INCIDENT_TITLE_CY = "Ymosodiad seiber ar systemau ein pencadlys"
UPDATE_TITLE = "Helpline open"
UPDATE_TITLE_CY = "Llinell gymorth ar agor"
HEADING = "What happened and what to do"
HEADING_CY = "Beth ddigwyddodd a beth i'w wneud"


def _axe_violations(page) -> str:  # type: ignore[no-untyped-def]
    """An empty string when axe-core finds nothing, else a readable report of every violation."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    if not results.violations_count:
        return ""
    lines = [f"{results.violations_count} axe-core violation(s) on {page.url}:"]
    for violation in results.response["violations"]:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']} <{violation['helpUrl']}>")
        for node in violation["nodes"]:
            lines.append(f"    at {', '.join(map(str, node['target']))}: {node['html']}")
            for check in node.get("any", []) + node.get("all", []) + node.get("none", []):
                lines.append(f"      * {check['message']}")
    return "\n".join(lines)


def test_incident_page_shows_the_demo_incident_and_its_update(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    response = page.goto(live_server + "/")
    assert response is not None and response.status == 200
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text(HEADING)
    expect(page.get_by_role("heading", level=2, name=INCIDENT_TITLE)).to_be_visible()
    expect(page.get_by_role("heading", level=4, name=UPDATE_TITLE)).to_be_visible()
    expect(page.get_by_text("Our helpline is open from 8am to 8pm every day.")).to_be_visible()
    expect(page.get_by_role("link", name="Check if you are affected").first).to_be_visible()


def test_welsh_is_chosen_remembered_and_english_comes_back(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + "/")
    page.get_by_role("link", name="Cymraeg").click()
    page.wait_for_load_state()
    expect(page.locator("html")).to_have_attribute("lang", "cy")
    expect(page.get_by_role("heading", level=1)).to_have_text(HEADING_CY)
    expect(page.get_by_role("heading", level=2, name=INCIDENT_TITLE_CY)).to_be_visible()
    expect(page.get_by_role("heading", level=4, name=UPDATE_TITLE_CY)).to_be_visible()

    # The choice is remembered: the next visit, without ?lang, is still in Welsh.
    page.goto(live_server + "/")
    assert "lang=" not in page.url
    expect(page.locator("html")).to_have_attribute("lang", "cy")
    expect(page.get_by_role("heading", level=1)).to_have_text(HEADING_CY)

    page.get_by_role("link", name="English").click()
    page.wait_for_load_state()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text(HEADING)

    page.goto(live_server + "/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=2, name=INCIDENT_TITLE)).to_be_visible()


def test_skip_link_is_first_and_moves_focus_to_main(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + "/")
    page.keyboard.press("Tab")
    skip = page.locator(":focus")
    expect(skip).to_have_text("Skip to main content")
    expect(skip).to_have_attribute("href", "#main")
    # Visible on screen once focused (it sits off-screen otherwise).
    box = skip.bounding_box()
    viewport = page.viewport_size
    assert box is not None and viewport is not None
    assert 0 <= box["x"] < viewport["width"] and 0 <= box["y"] < viewport["height"], box

    page.keyboard.press("Enter")
    expect(page.locator(":focus")).to_have_attribute("id", "main")
    assert page.evaluate("document.activeElement.tagName") == "MAIN"


@pytest.mark.parametrize(("path", "lang"), [("/?lang=en", "en"), ("/?lang=cy", "cy"), ("/no-such-page", "en")],
                         ids=["incident-en", "incident-cy", "not-found"])
def test_no_axe_violations(page, live_server: str, path: str, lang: str) -> None:  # type: ignore[no-untyped-def]
    response = page.goto(live_server + path)
    assert response is not None
    assert response.status == (404 if path == "/no-such-page" else 200)
    expect(page.locator("html")).to_have_attribute("lang", lang)
    report = _axe_violations(page)
    assert not report, "\n" + report


def test_not_found_page_is_a_page_a_person_can_use(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    response = page.goto(live_server + "/no-such-page")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    page.get_by_role("link", name="Go to the incident information page").click()
    page.wait_for_load_state()
    expect(page.get_by_role("heading", level=2, name=INCIDENT_TITLE)).to_be_visible()


def test_security_headers_are_sent_and_nothing_on_the_page_breaks_them(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    failed: list[str] = []
    page.on("requestfailed", lambda req: failed.append(f"{req.url}: {req.failure}"))
    response = page.goto(live_server + "/")
    assert response is not None
    headers = response.headers
    assert "default-src 'self'" in headers.get("content-security-policy", ""), headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers.get("x-content-type-options") == "nosniff", headers
    page.wait_for_load_state("networkidle")
    # The stylesheet loaded under the policy (the header is dark, not the browser default).
    header = page.evaluate("getComputedStyle(document.querySelector('.site-header')).backgroundColor")
    assert header == "rgb(11, 12, 12)"
    assert not [line for line in console if "Content Security Policy" in line], console
    assert not failed, failed


@pytest.mark.parametrize("path", ["/?lang=en", "/?lang=cy", "/no-such-page"],
                         ids=["incident-en", "incident-cy", "not-found"])
def test_phone_viewport_has_no_horizontal_scroll(browser, live_server: str, path: str) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 375, "height": 667}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, locale="en-GB")
    try:
        page = context.new_page()
        page.goto(live_server + path)
        page.wait_for_load_state("networkidle")
        sizes = page.evaluate("({scroll: document.scrollingElement.scrollWidth, inner: window.innerWidth})")
        assert sizes["inner"] == 375, sizes
        assert sizes["scroll"] <= sizes["inner"], f"horizontal scroll on {path} at 375px: {sizes}"
    finally:
        context.close()
