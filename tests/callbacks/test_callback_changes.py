"""After the request the member is not on their own (issue 17, item 5): /status shows their request with
change and cancel, cancelling is confirmed, the done page's links come filled in for the requester only, and
the member hears when an agent moves their call."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.callbacks import service
from app.callbacks.models import CallbackRequest
from app.db import utcnow
from app.providers import outbox
from tests.callbacks.queue_helpers import agent, waiting
from tests.callbacks.test_callbacks import ask, window
from tests.callbacks.test_queue_pages import post as staff_post
from tests.callbacks.test_queue_pages import sign_in as staff_sign_in
from tests.lookup.helpers import last_code, member, post, run_jobs


def the_request(session: Session) -> CallbackRequest:
    return session.execute(select(CallbackRequest)).scalars().one()


def link(page: str, text: str) -> str:
    found = re.search(r'<a href="([^"]+)">' + re.escape(text) + "</a>", page)
    assert found, f"no link {text!r}"
    return found.group(1).replace("&amp;", "&")


def sign_in(web: TestClient, session: Session, session_factory: sessionmaker[Session], number: str,
            email: str, phone: str) -> int:
    member_id = member(session, number, email=email, phone=phone)
    post(web, "/check", {"identifier": number})
    run_jobs(session_factory)
    assert post(web, "/check/code", {"code": last_code(session, email)}).status_code == 303
    return member_id


def test_the_done_pages_cancel_link_asks_to_confirm_with_everything_filled_in(web: TestClient,
                                                                             session: Session) -> None:
    ask(web)
    request = the_request(session)
    done = web.get("/callback/done")
    confirm = web.get(link(done.text, "Cancel this request"))
    assert confirm.status_code == 200 and request.reference in confirm.text
    assert "Are you sure" in confirm.text and 'value="+447700900777"' in confirm.text
    session.refresh(request)
    assert request.status == "waiting", "opening the link cancels nothing"
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', confirm.text).group(1)  # type: ignore[union-attr]
    answer = web.post("/callback/cancel", data={"csrf_token": token, "reference": request.reference,
                                                "phone": "+447700900777"})
    assert answer.status_code == 303 and answer.headers["location"] == "/callback/cancelled"
    session.refresh(request)
    assert request.status == "cancelled"


def test_a_stranger_with_the_link_sees_neither_the_phone_nor_the_time(web: TestClient, session: Session,
                                                                     app) -> None:  # type: ignore[no-untyped-def]
    ask(web)
    request = the_request(session)
    with TestClient(app, follow_redirects=False) as stranger:
        for path in (f"/callback/cancel?reference={request.reference}",
                     f"/callback/change?reference={request.reference}"):
            page = stranger.get(path)
            assert page.status_code == 200
            assert "7700900777" not in page.text and "Are you sure" not in page.text
            assert 'name="phone" type="tel" value=""' in page.text, "the phone must be typed"


def test_a_cookie_set_by_hand_to_someones_reference_opens_nothing(web: TestClient, session: Session,
                                                                   app) -> None:  # type: ignore[no-untyped-def]
    ask(web)
    request = the_request(session)
    with TestClient(app, follow_redirects=False) as stranger:
        stranger.cookies.set("portal_callback", request.reference, path="/callback")
        done = stranger.get("/callback/done")
        assert done.status_code == 303 and done.headers["location"] == "/callback"
        page = stranger.get(f"/callback/cancel?reference={request.reference}")
        assert "7700900777" not in page.text and "Are you sure" not in page.text


def test_the_requester_changes_the_time_and_is_told(web: TestClient, session: Session,
                                                   session_factory: sessionmaker[Session]) -> None:
    ask(web)
    run_jobs(session_factory)
    request = the_request(session)
    done = web.get("/callback/done")
    form = web.get(link(done.text, "Change the time"))
    assert form.status_code == 200 and 'value="+447700900777"' in form.text
    later = window(hours_from_now=None)
    start = later["window_start"].replace("T10:", "T15:")
    end = later["window_end"].replace("T13:", "T17:")
    answer = post(web, "/callback/change", {"reference": request.reference, "phone": "07700 900777",
                                            "window_start": start, "window_end": end},
                  form_page=f"/callback/change?reference={request.reference}")
    assert answer.status_code == 303
    page = web.get(answer.headers["location"])
    assert "We have changed the time of your call" in page.text and "15:00" in page.text and "17:00" in page.text
    session.refresh(request)
    assert service.local_time(request.window_start, "en").endswith("15:00")
    run_jobs(session_factory)
    texts = outbox.latest(session, to="+447700900777")
    assert len(texts) == 2 and "15:00" in texts[0].body, "the new time is confirmed by text"


def test_changing_needs_the_reference_and_the_phone_and_a_sensible_window(web: TestClient, session: Session) -> None:
    ask(web)
    request = the_request(session)
    fields = {"reference": request.reference, **window()}
    wrong = post(web, "/callback/change", {**fields, "phone": "07700 900778"}, form_page="/callback/change")
    assert wrong.status_code == 422 and "could not find" in wrong.text
    past = post(web, "/callback/change", {**fields, "phone": "07700 900777", **window(hours_from_now=-5)},
                form_page="/callback/change")
    assert past.status_code == 422 and "must be in the future" in past.text
    session.refresh(request)
    assert request.window_start > utcnow()


def test_a_member_sees_their_request_on_status_and_cancelling_it_is_confirmed(
        web: TestClient, session: Session, session_factory: sessionmaker[Session]) -> None:
    sign_in(web, session, session_factory, "C300001", "c1@kent.example.org", "07700 900331")
    assert "Your request for a call back" not in web.get("/status").text
    ask(web, phone="07700 900331")
    request = the_request(session)
    status = web.get("/status")
    assert request.reference in status.text and "Waiting for our call" in status.text
    assert link(status.text, "Change the time") == f"/callback/change?reference={request.reference}"
    mine = web.get("/callback")
    assert 'action="/callback/cancel"' not in mine.text, "no one-click cancel"
    confirm = web.get(link(mine.text, "Cancel this request"))
    assert "Are you sure" in confirm.text and link(confirm.text, "No, keep it") == "/status"
    session.refresh(request)
    assert request.status == "waiting"
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', confirm.text).group(1)  # type: ignore[union-attr]
    web.post("/callback/cancel", data={"csrf_token": token, "reference": request.reference,
                                       "phone": "+447700900331"})
    status = web.get("/status")
    assert request.reference in status.text and "Cancelled" in status.text
    assert "Change the time" not in status.text and 'href="/callback"' in status.text, "they can ask again"


def agent_moves_the_call(app, session: Session, request: CallbackRequest, at: str) -> None:  # type: ignore[no-untyped-def]
    """An agent takes the request and records "call later" at `at` (UK time) on the call sheet."""
    me = agent(session)
    with TestClient(app, follow_redirects=False) as staff:
        staff_sign_in(staff, session, me)
        staff_post(staff, "/staff/queue", "/staff/queue/take")
        recorded = staff_post(staff, f"/staff/queue/{request.id}", f"/staff/queue/{request.id}/outcome",
                              {"outcome": "call_later", "call_at": at})
        assert recorded.status_code == 303  # type: ignore[attr-defined]


def tomorrow_at(hhmm: str) -> str:
    return (datetime.now(service.LOCAL) + timedelta(days=1)).strftime("%Y-%m-%dT") + hhmm


def test_an_agent_moving_the_call_tells_the_member_by_text(app, session: Session,  # type: ignore[no-untyped-def]
                                                         session_factory: sessionmaker[Session]) -> None:
    request = waiting(session, phone="+447700900341")
    agent_moves_the_call(app, session, request, tomorrow_at("19:00"))
    run_jobs(session_factory)
    text = outbox.latest(session, to="+447700900341", last=1)[0]
    assert request.reference in text.body and "19:00" in text.body and "/callback/change" in text.body


def test_an_agent_moving_a_members_call_tells_them_by_email(app, session: Session,  # type: ignore[no-untyped-def]
                                                           session_factory: sessionmaker[Session]) -> None:
    member_id = member(session, "C300002", email="c2@kent.example.org", phone="07700 900332")
    request = waiting(session, phone="+447700900332", member_id=member_id)
    agent_moves_the_call(app, session, request, tomorrow_at("19:00"))
    run_jobs(session_factory)
    email = outbox.latest(session, to="c2@kent.example.org", last=1)[0]
    assert request.reference in email.body and "19:00" in email.body
    assert outbox.latest(session, to="+447700900332") == [], "a member with an email is not texted as well"


def test_no_english_on_the_welsh_change_cancel_and_status_pages(
        web: TestClient, session: Session, session_factory: sessionmaker[Session]) -> None:
    from tests.lookup.test_welsh import english_left

    sign_in(web, session, session_factory, "C300009", "c9@kent.example.org", "07700 900339")
    web.get("/status?lang=cy")
    ask(web, phone="07700 900339")
    request = the_request(session)
    pages = {"status": web.get("/status").text, "existing": web.get("/callback").text,
             "asked again": web.get(post(web, "/callback", {"name": "Rhys", "phone": "07700 900339", "topic": "other",
                                                            "passphrase": "barcud", **window(length=4)},
                                         form_page="/status").headers["location"]).text,
             "change": web.get(f"/callback/change?reference={request.reference}").text,
             "confirm cancel": web.get(f"/callback/cancel?reference={request.reference}").text}
    pages["change refused"] = post(web, "/callback/change", {
        "reference": request.reference, "phone": "07700 900339",
        "window_start": tomorrow_at("01:00"), "window_end": tomorrow_at("03:00")}, form_page="/status").text
    pages["abroad"] = post(web, "/callback", {"name": "Rhys", "phone": "+371 21 234 567", "topic": "other",
                                              "passphrase": "barcud", **window()}, form_page="/status").text
    with TestClient(web.app, follow_redirects=False) as requester:
        requester.get("/callback?lang=cy")
        ask(requester, phone="07700 900338")
        pages["done"] = requester.get("/callback/done").text
        changed = post(requester, "/callback/change", {
            "reference": requester.get("/callback/done").text.split('class="reference">')[1][:12],
            "phone": "07700 900338", **window()}, form_page="/callback/change")
        pages["changed"] = requester.get(changed.headers["location"]).text
        pages["public change"] = requester.get("/callback/change").text
    web.post("/callback/cancel", data={"csrf_token": re.search(r'name="csrf_token" value="([0-9a-f]+)"',
                                                              pages["confirm cancel"]).group(1),  # type: ignore[union-attr]
                                       "reference": request.reference, "phone": "07700 900339"})
    pages["status cancelled"] = web.get("/status").text
    for name, page in pages.items():
        assert 'lang="cy"' in page, name
        assert not english_left(page), (name, english_left(page))
    assert "ar gau am yr holl amser" in pages["change refused"]
    assert "Nid ydym wedi derbyn y cais" in pages["asked again"] and request.reference in pages["asked again"]
    assert "Y Deyrnas Unedig" in pages["abroad"], pages["abroad"][-3000:]
    assert "Wedi&#39;i ganslo" in pages["status cancelled"]
