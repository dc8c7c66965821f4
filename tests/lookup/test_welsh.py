"""Every page of checking your status and of callbacks, in Welsh, has no English text left."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.i18n import translations
from tests.callbacks.test_callbacks import ask
from tests.lookup.helpers import last_code, member, post, run_jobs


def visible_text(page: str) -> str:
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def english_left(page: str) -> list[str]:
    """Messages of the catalog shown in English on a Welsh page (long enough not to match by chance)."""
    welsh = translations("cy")
    text = visible_text(page)
    catalog = welsh._catalog  # type: ignore[attr-defined]
    return [msgid for msgid in catalog if isinstance(msgid, str) and len(msgid) > 14 and msgid in text
            and catalog[msgid] != msgid]


def test_no_english_on_the_welsh_pages(web: TestClient, session: Session,
                                       session_factory: sessionmaker[Session]) -> None:
    member(session, "W600001", email="w1@kent.example.org", categories="card_details")
    pages = {}
    pages["check"] = web.get("/check?lang=cy").text
    pages["check error"] = post(web, "/check", {"identifier": "<>"}).text
    post(web, "/check", {"identifier": "W600001"})
    pages["code"] = web.get("/check/code").text
    pages["code error"] = post(web, "/check/code", {"code": "12"}).text
    pages["resend refused"] = post(web, "/check/code/resend", {}, form_page="/check/code").text
    run_jobs(session_factory)
    post(web, "/check/code", {"code": last_code(session, "w1@kent.example.org")})
    pages["status"] = web.get("/status").text
    pages["callback"] = web.get("/callback").text
    pages["callback error"] = ask(web, window_start="x").text
    ask(web)
    pages["existing"] = web.get("/callback").text
    pages["done"] = web.get("/callback/done").text
    pages["cancel"] = web.get("/callback/cancel").text
    pages["cancel error"] = post(web, "/callback/cancel", {"reference": "CB-0000-0000", "phone": "07700900001"}).text
    pages["cancelled"] = web.get("/callback/cancelled").text
    for name, page in pages.items():
        assert 'lang="cy"' in page, name
        assert not english_left(page), (name, english_left(page))
    assert english_left(web.get("/check?lang=en").text), "the check itself finds English when it is there"


def test_the_end_of_a_check_and_the_last_code_of_the_hour_in_welsh(web: TestClient, session: Session) -> None:
    from app.config import get_settings
    from tests.lookup.helpers import time_passes

    web.get("/check?lang=cy")
    post(web, "/check", {"identifier": "W600002"})
    for _ in range(get_settings().CHECK_MAX_SENDS - 1):
        time_passes(session, 70)
        assert post(web, "/check/code/resend", {}, form_page="/check/code").status_code == 303
    time_passes(session, 70)
    too_many = post(web, "/check/code/resend", {}, form_page="/check/code")
    assert too_many.status_code == 422 and "Rydym wedi anfon cymaint o godau" in too_many.text
    time_passes(session, 59 * 60)
    expired = post(web, "/check/code", {"code": "123456"})
    assert expired.status_code == 422 and "wedi dod i ben" in expired.text
    for page in (too_many.text, expired.text):
        assert not english_left(page), english_left(page)
