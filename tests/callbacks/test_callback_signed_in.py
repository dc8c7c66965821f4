"""A request made before signing in is the member's once they sign in with the code (issue 17, item 5), and
sending the form again while a request is open says plainly that nothing new was taken; a stranger typing a
phone that is not theirs still learns nothing (decision 49)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.callbacks import service
from tests.callbacks.test_callback_changes import link, sign_in, the_request
from tests.lookup.helpers import csrf, post

PHONE, E164 = "07700 900351", "+447700900351"


def tomorrow(start: str, end: str) -> dict[str, str]:
    day = (datetime.now(service.LOCAL) + timedelta(days=1)).strftime("%Y-%m-%dT")
    return {"window_start": day + start, "window_end": day + end}


def ask(client: TestClient, phone: str = PHONE, start: str = "09:00", end: str = "11:00") -> object:
    # The token from a page that always has a form: a member with an open request sends the form from a tab
    # opened before, since /callback now shows their request instead.
    return post(client, "/callback", {"name": "Sam Evans", "phone": phone, "topic": "affected",
                                      "passphrase": "blue heron", **tomorrow(start, end)}, form_page="/callback/cancel")


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_a_request_made_before_signing_in_shows_on_status_and_can_be_changed_and_cancelled(
        app, web: TestClient, session: Session,  # type: ignore[no-untyped-def]
        session_factory: sessionmaker[Session]) -> None:
    with TestClient(app, follow_redirects=False) as unsigned:  # no done cookie reaches the member's browser
        assert ask(unsigned).status_code == 303  # type: ignore[attr-defined]
    request = the_request(session)
    sign_in(web, session, session_factory, "C130001", "c13@kent.example.org", PHONE)
    status = web.get("/status")
    assert request.reference in status.text and "Waiting for our call" in status.text
    assert "09:00" in status.text and "11:00" in status.text
    change = web.get(link(status.text, "Change the time"))
    assert f'value="{E164}"' in change.text, "the member's own request comes filled in"
    answer = web.post("/callback/change", data={"csrf_token": csrf(web, "/status"), "reference": request.reference,
                                                "phone": E164, **tomorrow("13:00", "15:00")})
    assert answer.status_code == 303
    status = web.get("/status")
    assert "13:00" in status.text and "09:00" not in status.text
    confirm = web.get(link(status.text, "Cancel this request"))
    assert "Are you sure" in confirm.text and f'value="{E164}"' in confirm.text
    web.post("/callback/cancel", data={"csrf_token": csrf(web, "/status"), "reference": request.reference,
                                       "phone": E164})
    session.refresh(request)
    assert request.status == "cancelled"
    status = web.get("/status")
    assert request.reference in status.text and "Cancelled" in status.text
    assert "Change the time" not in status.text and 'href="/callback"' in status.text


def test_only_the_member_whose_phone_is_on_file_sees_a_request_made_before_signing_in(
        app, web: TestClient, session: Session,  # type: ignore[no-untyped-def]
        session_factory: sessionmaker[Session]) -> None:
    with TestClient(app, follow_redirects=False) as unsigned:
        ask(unsigned)
    request = the_request(session)
    sign_in(web, session, session_factory, "C130002", "c13b@kent.example.org", "07700 900352")
    assert request.reference not in web.get("/status").text
    cancel = web.get(f"/callback/cancel?reference={request.reference}")
    assert E164 not in cancel.text and "09:00" not in cancel.text
    assert "You already asked" not in web.get("/callback").text


def test_asking_again_while_signed_in_says_the_new_time_was_not_taken(
        web: TestClient, session: Session, session_factory: sessionmaker[Session]) -> None:
    sign_in(web, session, session_factory, "C130003", "c13c@kent.example.org", PHONE)
    ask(web)
    request = the_request(session)
    again = ask(web, start="12:00", end="14:00")
    assert again.status_code == 303  # type: ignore[attr-defined]
    page = web.get(again.headers["location"]).text  # type: ignore[attr-defined]
    text = _text(page)
    assert "You already asked us to call you between" in text and f"(reference {request.reference})" in text
    assert "09:00" in text and "11:00" in text and "12:00" not in text and "14:00" not in text
    assert "We have not taken the request you just sent, or its time" in text
    assert link(page, "Change the time") == f"/callback/change?reference={request.reference}"
    assert link(page, "Cancel this request") == f"/callback/cancel?reference={request.reference}"
    session.refresh(request)
    assert request.window_start.astimezone(service.LOCAL).strftime("%H:%M") == "09:00"


def test_asking_again_after_signing_in_finds_the_request_made_before(
        app, web: TestClient, session: Session,  # type: ignore[no-untyped-def]
        session_factory: sessionmaker[Session]) -> None:
    with TestClient(app, follow_redirects=False) as unsigned:
        ask(unsigned)
    request = the_request(session)
    sign_in(web, session, session_factory, "C130004", "c13d@kent.example.org", PHONE)
    again = ask(web, start="12:00", end="14:00")
    text = _text(web.get(again.headers["location"]).text)  # type: ignore[attr-defined]
    assert f"(reference {request.reference})" in text and "12:00" not in text
    assert "We have not taken the request you just sent" in text


def test_a_stranger_asking_for_a_phone_with_a_request_still_learns_nothing(
        app, web: TestClient, session: Session,  # type: ignore[no-untyped-def]
        session_factory: sessionmaker[Session]) -> None:
    sign_in(web, session, session_factory, "C130005", "c13e@kent.example.org", PHONE)
    ask(web)
    request = the_request(session)
    with TestClient(app, follow_redirects=False) as stranger:
        again = ask(stranger, start="12:00", end="14:00")
        page = stranger.get(again.headers["location"]).text  # type: ignore[attr-defined]
    assert "This number already has a request" in page
    assert request.reference not in page and "09:00" not in page and "You already asked" not in page
