"""Callback requests: ask, see the confirmation, one open request per member and per phone, cancel."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.callbacks import service
from app.callbacks.models import CallbackRequest, Priority
from app.db import utcnow
from app.providers import outbox
from tests.lookup.helpers import last_code, member, post, run_jobs


def window(hours_from_now: int | None = None, length: int = 3) -> dict[str, str]:
    """A window `hours_from_now`; by default tomorrow from 10:00, when the helpline is open at any time of year."""
    if hours_from_now is None:
        start = (datetime.now(service.LOCAL) + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    else:
        start = (datetime.now(service.LOCAL) + timedelta(hours=hours_from_now)).replace(second=0, microsecond=0)
    return {"window_start": start.strftime("%Y-%m-%dT%H:%M"),
            "window_end": (start + timedelta(hours=length)).strftime("%Y-%m-%dT%H:%M")}


def ask(web: TestClient, **fields: str) -> object:
    data = {"name": "Sam Evans", "phone": "07700 900777", "topic": "affected", "passphrase": "blue heron",
            **window(), **fields}
    return post(web, "/callback", data)


def test_a_request_gets_a_reference_a_confirmation_page_and_a_confirmation_text(
        web: TestClient, session: Session, session_factory: sessionmaker[Session]) -> None:
    answer = ask(web, urgent="on")
    assert answer.status_code == 303 and answer.headers["location"] == "/callback/done"
    done = web.get("/callback/done")
    request = session.execute(select(CallbackRequest)).scalars().one()
    assert done.status_code == 200 and request.reference in done.text
    assert request.reference.startswith("CB-") and len(request.reference) == 12
    assert request.priority == Priority.UNVERIFIED_URGENT and request.status == "waiting", \
        "urgent, but below every signed-in member: anyone can tick the box"
    assert "Sam Evans" not in request.name_enc and "blue heron" not in request.passphrase_enc
    assert service.details(request).passphrase == "blue heron"
    run_jobs(session_factory)
    text = outbox.latest(session, to="+447700900777", last=1)[0]
    assert request.reference in text.body and "blue heron" not in text.body


def test_a_second_request_for_the_same_phone_shows_a_neutral_page(web: TestClient, session: Session,
                                                                    app) -> None:  # type: ignore[no-untyped-def]
    assert ask(web).status_code == 303
    first = session.execute(select(CallbackRequest)).scalars().one()
    with TestClient(app, follow_redirects=False) as stranger:
        again = ask(stranger, name="Someone Else", phone="+44 7700 900777")
        assert again.status_code == 303
        page = stranger.get("/callback/done")
        assert page.status_code == 200
        assert "already has a request" in page.text
        assert first.reference not in page.text, "a stranger never sees the reference"
    assert len(session.execute(select(CallbackRequest)).scalars().all()) == 1


def test_a_signed_in_member_gets_a_prefilled_form_and_sees_their_open_request(
        web: TestClient, session: Session, session_factory: sessionmaker[Session]) -> None:
    member(session, "B200001", email="b1@kent.example.org", phone="07700 900321", categories="bank_details")
    post(web, "/check", {"identifier": "B200001"})
    run_jobs(session_factory)
    assert post(web, "/check/code", {"code": last_code(session, "b1@kent.example.org")}).status_code == 303
    form = web.get("/callback")
    assert 'value="Ann Jones"' in form.text and 'value="+447700900321"' in form.text
    assert ask(web, phone="07700 900321").status_code == 303
    request = session.execute(select(CallbackRequest)).scalars().one()
    assert request.member_id is not None and request.priority == Priority.FINANCIAL
    mine = web.get("/callback")
    assert request.reference in mine.text and "already asked us to call you" in mine.text
    again = post(web, "/callback", {"name": "Ann Jones", "phone": "07700 900111", "topic": "affected",
                                     "passphrase": "blue heron", **window()}, form_page="/status")
    assert again.status_code == 303 and again.headers["location"] == "/callback?already=1", \
        "one open request per member"
    run_jobs(session_factory)
    assert request.reference in outbox.latest(session, to="b1@kent.example.org", last=1)[0].body, \
        "a member's confirmation goes to the email on file"


def test_cancel_needs_the_reference_and_the_phone(web: TestClient, session: Session) -> None:
    ask(web)
    request = session.execute(select(CallbackRequest)).scalars().one()
    wrong = post(web, "/callback/cancel", {"reference": request.reference, "phone": "07700 900778"})
    assert wrong.status_code == 422 and "could not find" in wrong.text
    typed = request.reference.lower().replace("-", " ")
    right = post(web, "/callback/cancel", {"reference": typed, "phone": "+447700900777"})
    assert right.status_code == 303 and right.headers["location"] == "/callback/cancelled"
    session.refresh(request)
    assert request.status == "cancelled"
    assert ask(web).status_code == 303, "once cancelled, the phone can ask again"


def test_windows_must_make_sense(web: TestClient) -> None:
    past = ask(web, **window(hours_from_now=-5))
    assert past.status_code == 422 and "must be in the future" in past.text
    short = ask(web, **window(length=0))
    assert short.status_code == 422 and "at least 30 minutes" in short.text
    garbled = ask(web, window_start="next tuesday")
    assert garbled.status_code == 422 and "as a date and time" in garbled.text


def test_the_service_functions_the_helpline_builds_on(session: Session) -> None:
    start = datetime.fromisoformat(window()["window_start"]).replace(tzinfo=service.LOCAL)
    outcome = service.request_callback(
        session, member_id=None, name="Pat", phone="07700 900999", window_start=start,
        window_end=start + timedelta(hours=2), topic="scam", urgent=False, passphrase="otter", language="cy")
    assert outcome.created and outcome.request is not None
    assert service.open_request_for(session, phone="+447700900999") is outcome.request
    assert outcome.request.due_at == start + service.sla(Priority.UNVERIFIED), "due one SLA after the window opens"
    service.cancel_callback(session, reference=outcome.request.reference, phone="07700 900999")
    assert service.open_request_for(session, phone="07700 900999") is None


def test_a_repeat_for_the_same_phone_sends_the_reference_to_that_phone_again(
        web: TestClient, session: Session, session_factory: sessionmaker[Session], app) -> None:  # type: ignore[no-untyped-def]
    ask(web)
    request = session.execute(select(CallbackRequest)).scalars().one()
    run_jobs(session_factory)
    request.confirmed_at = utcnow() - timedelta(hours=1)  # the last confirmation went a while ago
    session.flush()
    with TestClient(app, follow_redirects=False) as stranger:
        ask(stranger, phone="07700900777")
    run_jobs(session_factory)
    texts = outbox.latest(session, to="+447700900777")
    assert len(texts) == 2 and all(request.reference in t.body for t in texts)
