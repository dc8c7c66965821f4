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


# Every public page this module covers, as (how to reach it, status, language); a "form:" entry posts
# the verify-message form with that reference first.
PAGES = {
    "incident-en": ("/?lang=en", 200, "en"),
    "incident-cy": ("/?lang=cy", 200, "cy"),
    "update-en": ("/updates/hq-2019/2?lang=en", 200, "en"),
    "update-cy": ("/updates/hq-2019/2?lang=cy", 200, "cy"),
    "accessibility-en": ("/accessibility?lang=en", 200, "en"),
    "accessibility-cy": ("/accessibility?lang=cy", 200, "cy"),
    "privacy-en": ("/privacy?lang=en", 200, "en"),
    "privacy-cy": ("/privacy?lang=cy", 200, "cy"),
    "verify-en": ("/verify-message?lang=en", 200, "en"),
    "verify-cy": ("/verify-message?lang=cy", 200, "cy"),
    "verify-not-ours-en": ("form:7K2Q-9M4T-XH3D?lang=en", 200, "en"),
    "verify-not-ours-cy": ("form:7K2Q-9M4T-XH3D?lang=cy", 200, "cy"),
    "verify-error-en": ("form:PF-7K2Q?lang=en", 422, "en"),
    "verify-error-cy": ("form:PF-7K2Q?lang=cy", 422, "cy"),
    "not-found": ("/no-such-page", 404, "en"),
}


def open_page(page, live_server: str, how: str) -> int:  # type: ignore[no-untyped-def]
    """Go to a page (submitting the verify form for "form:" entries); the status of the last answer."""
    if not how.startswith("form:"):
        response = page.goto(live_server + how)
        assert response is not None
        return int(response.status)
    reference, _, query = how[len("form:"):].partition("?")
    page.goto(f"{live_server}/verify-message?{query}")
    page.locator("#reference").fill(reference)
    with page.expect_response(lambda r: r.request.method == "POST" or "/verify-message/result" in r.url) as first:
        page.locator("form[action='/verify-message'] button[type=submit]").click()
    page.wait_for_load_state()
    status = first.value.status
    return 200 if status == 303 else int(status)


@pytest.mark.parametrize("name", list(PAGES))
def test_no_axe_violations(page, live_server: str, name: str) -> None:  # type: ignore[no-untyped-def]
    how, status, lang = PAGES[name]
    assert open_page(page, live_server, how) == status
    expect(page.locator("html")).to_have_attribute("lang", lang)
    report = _axe_violations(page)
    assert not report, "\n" + report


def test_reading_the_incident_page_and_an_update(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + "/?lang=en")
    expect(page.get_by_role("heading", level=3, name="What happened", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", level=3, name="What we are doing")).to_be_visible()
    expect(page.get_by_role("heading", level=3, name="What you should do")).to_be_visible()
    expect(page.get_by_role("heading", level=4, name="Bank account details")).to_be_visible()
    expect(page.get_by_role("heading", level=3, name="Questions and answers")).to_be_visible()
    expect(page.get_by_role("heading", level=4, name="How do I know a message is really from you?")).to_be_visible()
    expect(page.get_by_role("heading", level=2, name="Scam messages: how to spot and report them")).to_be_visible()
    expect(page.get_by_role("link", name="report@phishing.gov.uk").first).to_be_visible()
    expect(page.get_by_text("We are open 8am to 8pm every day.")).to_be_visible()
    page.get_by_role("navigation", name="On this page").get_by_role("link", name="Questions and answers").click()
    assert page.url.endswith("#incident-hq-2019-questions")

    page.get_by_role("link", name="Fake messages offering compensation").click()
    page.wait_for_load_state()
    expect(page.get_by_role("heading", level=1)).to_have_text("Fake messages offering compensation")
    expect(page.get_by_text("26 March 2019")).to_be_visible()
    expect(page.get_by_text("They are not from us.")).to_be_visible()
    page.get_by_role("link", name="All updates").click()
    page.wait_for_load_state()
    expect(page.get_by_role("heading", level=1)).to_have_text(HEADING)


def test_reading_an_update_in_welsh(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + "/?lang=cy")
    expect(page.get_by_role("heading", level=3, name="Beth rydym yn ei wneud")).to_be_visible()
    page.get_by_role("link", name="Negeseuon ffug yn cynnig iawndal").click()
    page.wait_for_load_state()
    expect(page.locator("html")).to_have_attribute("lang", "cy")
    expect(page.get_by_role("heading", level=1)).to_have_text("Negeseuon ffug yn cynnig iawndal")
    expect(page.get_by_text("26 Mawrth 2019")).to_be_visible()


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_the_atom_feed_parses(page, live_server: str, lang: str) -> None:  # type: ignore[no-untyped-def]
    from xml.etree import ElementTree as ET

    page.goto(f"{live_server}/?lang={lang}")
    href = page.locator("footer").get_by_role("link", name="Updates feed" if lang == "en" else "Ffrwd diweddariadau")
    answer = page.request.get(live_server + (href.get_attribute("href") or ""))
    assert answer.status == 200 and answer.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(answer.body())
    atom = "{http://www.w3.org/2005/Atom}"
    assert feed.tag == f"{atom}feed"
    titles = [e.findtext(f"{atom}title") for e in feed.findall(f"{atom}entry")]
    assert titles[0] == ("Fake messages offering compensation" if lang == "en" else "Negeseuon ffug yn cynnig iawndal")
    assert len(titles) == 3
    # The feed's own address is declared in the page head for feed readers to find.
    assert page.locator("link[rel=alternate][type='application/atom+xml']").count() == 1


@pytest.mark.parametrize("name", [n for n in PAGES if n != "not-found"] + ["not-found"])
def test_usable_at_320_pixels_without_horizontal_scroll(browser, live_server: str,  # type: ignore[no-untyped-def]
                                                        name: str) -> None:
    context = browser.new_context(locale="en-GB")
    try:
        page = context.new_page()
        page.set_viewport_size({"width": 320, "height": 640})
        how, status, _ = PAGES[name]
        assert open_page(page, live_server, how) == status
        page.wait_for_load_state("networkidle")
        sizes = page.evaluate("({scroll: document.scrollingElement.scrollWidth,"
                              " client: document.scrollingElement.clientWidth})")
        assert sizes["client"] <= 320 and sizes["scroll"] <= sizes["client"], f"horizontal scroll on {name}: {sizes}"
    finally:
        context.close()


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
