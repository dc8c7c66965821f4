"""In real Chromium: no page breaks the Content Security Policy, and the forms' script works under it."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from playwright.sync_api import expect

from tests.browser.conftest import browser, context, live_server, page  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser
SKIP = ("/metrics", "/webhooks/", "/static", "/healthz", "/readyz", "/updates")


def public_pages() -> list[str]:
    from app.main import create_app

    app = create_app(run_embedded_worker=False)
    paths = {c.path or "" for c in iter_route_contexts(app.routes)
             if isinstance(c.original_route, APIRoute) and "GET" in c.original_route.methods}
    return sorted(p for p in paths if "{" not in p and not p.startswith(SKIP) and not p.endswith(".atom"))


def watch(page) -> list[str]:  # type: ignore[no-untyped-def]  # noqa: F811
    """Collects every policy violation the page reports (the browser's console and the DOM event)."""
    found: list[str] = []
    page.on("console", lambda msg: found.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                         "console.log('Content Security Policy violation: ' + e.violatedDirective))")
    return found


def test_no_page_breaks_the_policy(page, live_server: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    violations = watch(page)
    pages = public_pages()
    assert "/" in pages and "/staff/login" in pages
    for path in pages:
        for lang in ("en", "cy"):
            response = page.goto(f"{live_server}{path}?lang={lang}")
            assert response is not None and response.status < 500, path
            page.wait_for_load_state("load")
    assert not violations, violations


def test_a_form_with_errors_moves_focus_to_the_summary(page, live_server: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    violations = watch(page)
    page.goto(f"{live_server}/callback/cancel")
    page.get_by_role("button", name="Cancel the request").click()
    page.wait_for_load_state("load")
    summary = page.locator("[data-module='error-summary']")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    assert page.title().startswith("Error:")
    first_link = summary.get_by_role("link").first
    target = first_link.get_attribute("href")
    first_link.click()
    expect(page.locator(str(target))).to_be_focused()
    assert not violations, violations
