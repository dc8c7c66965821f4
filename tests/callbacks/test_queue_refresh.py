"""The helpline pages' refresh: a refresh never repeats the message of the last action, and a background refresh
is not activity, so an open queue tab still reaches the idle timeout."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import utcnow
from app.web.models import WebSession
from tests.callbacks.queue_helpers import agent, waiting
from tests.callbacks.test_queue_pages import post, sign_in

EMPTY = "Nobody is waiting for a call right now."
BACKGROUND = {"X-Background-Refresh": "1"}


def _waiting_now(page: str) -> int:
    found = re.search(r'id="waiting-count">(\d+)<', page)
    assert found, "the queue shows how many are waiting"
    return int(found.group(1))


def test_an_empty_take_is_not_repeated_once_requests_arrive(web: TestClient, session: Session) -> None:
    sign_in(web, session, agent(session))
    taken = post(web, "/staff/queue", "/staff/queue/take")
    assert taken.headers["location"] == "/staff/queue?empty=1"  # type: ignore[attr-defined]
    assert EMPTY in web.get("/staff/queue?empty=1").text
    for _ in range(3):
        waiting(session)
    again = web.get("/staff/queue?empty=1").text  # what a refresh of that address used to show
    assert _waiting_now(again) == 3 and EMPTY not in again
    assert 'data-refresh-url="/staff/queue"' in again, "the page refreshes from its own address, without ?empty=1"


def test_the_refresh_controls_are_a_link_without_javascript(web: TestClient, session: Session) -> None:
    sign_in(web, session, agent(session, "boss", role="supervisor"))
    for page in ("/staff/queue", "/staff/queue/overview"):
        text = web.get(page).text
        assert f'<a href="{page}">Refresh now</a>' in text
        toggle = re.search(r"<button[^>]*data-refresh-toggle[^>]*>", text)
        assert toggle and " hidden" in toggle.group(0), "the pause button is only shown by the script"
        assert "This page refreshes every" not in re.sub(r'data-running="[^"]*"', "", text), \
            "without JavaScript the page does not claim to refresh itself"


def _session_row(session: Session, web: TestClient) -> WebSession:
    from app.web.sessions import cookie_name, hash_token

    token = web.cookies.get(cookie_name())
    found = session.query(WebSession).filter(WebSession.token_hash == hash_token(token)).one()  # type: ignore[arg-type]
    return found


def test_a_background_refresh_is_not_activity(web: TestClient, session: Session) -> None:
    sign_in(web, session, agent(session))
    seen = _session_row(session, web)
    before = utcnow() - timedelta(minutes=5)
    seen.last_seen_at = before
    session.flush()
    assert web.get("/staff/queue", headers=BACKGROUND).status_code == 200
    session.refresh(seen)
    assert seen.last_seen_at == before, "a background refresh leaves the session's last activity alone"
    assert web.get("/staff/queue").status_code == 200
    session.refresh(seen)
    assert seen.last_seen_at > before, "a page the agent opens is activity"


def test_an_open_queue_tab_reaches_the_idle_timeout(web: TestClient, session: Session) -> None:
    sign_in(web, session, agent(session))
    seen = _session_row(session, web)
    idle = timedelta(minutes=get_settings().STAFF_SESSION_IDLE_MINUTES)
    seen.last_seen_at = utcnow() - idle + timedelta(minutes=1)
    session.flush()
    assert web.get("/staff/queue", headers=BACKGROUND).status_code == 200  # still signed in for a minute
    seen.last_seen_at -= timedelta(minutes=2)  # the tab kept refreshing: nobody did anything for the idle time
    session.flush()
    refused = web.get("/staff/queue", headers=BACKGROUND)
    assert refused.status_code == 303 and refused.headers["location"].startswith("/staff/login")
