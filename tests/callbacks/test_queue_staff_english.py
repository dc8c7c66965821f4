"""Staff pages are English only: in a browser whose visitor chose Welsh, every page under /staff and /admin
(their error pages too) is English and says so (lang="en"); none mixes Welsh and English under lang="cy"."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.i18n import translations
from tests.callbacks.queue_helpers import agent, waiting
from tests.callbacks.test_queue_pages import post, sign_in
from tests.lookup.test_welsh import visible_text


def welsh_left(page: str) -> list[str]:
    """Welsh messages of the catalog on a page (long enough not to match by chance)."""
    catalog = translations("cy")._catalog  # type: ignore[attr-defined]
    text = visible_text(page)
    return [welsh for msgid, welsh in catalog.items() if isinstance(msgid, str) and msgid and isinstance(welsh, str)
            and len(welsh) > 14 and welsh != msgid and welsh in text]


def _lang(page: str) -> str:
    found = re.search(r'<html lang="([a-z]+)"', page)
    assert found, "every page says its language"
    return found.group(1)


def _english(name: str, page: str) -> None:
    # Only translated messages can be told apart on a Welsh page (English left untranslated cannot), so the
    # rule is simple and whole: these pages are English, say so, and hold no Welsh.
    assert _lang(page) == "en", name
    assert not welsh_left(page), (name, welsh_left(page))


def test_no_staff_page_mixes_languages_in_a_welsh_session(web: TestClient, session: Session) -> None:
    request = waiting(session)
    boss = agent(session, "boss", role="supervisor")
    viewer = agent(session, "viewer", role="branch_viewer")
    auditor = agent(session, "auditor", role="auditor")
    admin = agent(session, "admin", role="admin")
    pages: dict[str, str] = {}
    web.cookies.set("lang", "cy")
    pages["sign in"] = web.get("/staff/login").text
    pages["sign in, Welsh asked for"] = web.get("/staff/login?lang=cy").text
    sign_in(web, session, boss)
    web.cookies.set("lang", "cy")
    pages["home"] = web.get("/staff").text
    pages["sessions"] = web.get("/staff/sessions").text
    pages["queue"] = web.get("/staff/queue").text
    post(web, "/staff/queue", "/staff/queue/take")
    pages["call sheet"] = web.get(f"/staff/queue/{request.id}").text
    pages["call sheet error"] = post(web, f"/staff/queue/{request.id}", f"/staff/queue/{request.id}/outcome",
                                     {"outcome": "call_later"}).text  # type: ignore[attr-defined]
    pages["overview"] = web.get("/staff/queue/overview").text
    pages["overview error"] = post(web, "/staff/queue/overview", f"/staff/queue/{request.id}/priority",
                                   {"priority": "x"}).text  # type: ignore[attr-defined]
    pages["not found"] = web.get("/staff/queue/999999999").text
    pages["refused"] = web.get("/staff/branch").text
    sign_in(web, session, viewer)
    web.cookies.set("lang", "cy")
    pages["branch"] = web.get("/staff/branch").text
    pages["not yours"] = web.get(f"/staff/queue/{request.id}").text
    sign_in(web, session, auditor)
    web.cookies.set("lang", "cy")
    pages["audit"] = web.get("/admin/audit").text
    sign_in(web, session, admin)
    web.cookies.set("lang", "cy")
    pages["staff accounts"] = web.get("/admin/staff").text
    for name, page in pages.items():
        _english(name, page)
    assert welsh_left(web.get("/check?lang=cy").text), "the check itself finds Welsh when it is there"
