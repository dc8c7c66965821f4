"""The incident page and feed served again to visitors without a session while the content is unchanged."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.incidents import content
from app.incidents import service as incident_service
from app.incidents.page_cache import PageCache
from app.web.sessions import cookie_name

from .conftest import post_update, write_incident


def test_a_change_is_shown_at_the_next_check_of_the_version(app: FastAPI, client: TestClient,
                                                             session: Session) -> None:
    app.state.incident_pages = PageCache(recheck_seconds=0)
    write_incident(session)
    session.commit()
    assert "Helpline open" not in client.get("/").text
    post_update(session)
    session.commit()
    assert "Helpline open" in client.get("/").text
    assert "Helpline open" in client.get("/updates.atom").text
    incident_service.set_faq(session, code="web-1", en=content.parse_faq("## New question?\n\nA."),
                             cy=content.parse_faq("## Cwestiwn newydd?\n\nA."), actor="a")
    session.commit()
    assert "New question?" in client.get("/").text
    assert "Cwestiwn newydd?" in client.get("/?lang=cy").text


def test_within_the_check_interval_readers_share_one_rendering_but_signed_in_visitors_never_do(
        app: FastAPI, client: TestClient, session: Session) -> None:
    app.state.incident_pages = PageCache(recheck_seconds=3600)
    write_incident(session)
    session.commit()
    first = client.get("/")
    post_update(session)
    session.commit()
    again = client.get("/")
    assert again.text == first.text and "Helpline open" not in again.text
    assert again.headers["content-type"].startswith("text/html")
    with TestClient(app) as member:
        member.cookies.set(cookie_name(), "any-session")
        assert "Helpline open" in member.get("/").text
    assert '<html lang="cy">' in client.get("/?lang=cy").text, "each language has its own copy"
