"""The call sheet speaks the agent's language, not the database's (topic, notices, the phone to dial), shows the
earlier calls with their notes and a short script; a supervisor's actions confirm what they did, and a form
the supervisor got wrong says so."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.callbacks import queue
from app.callbacks.attempts import Outcome
from app.callbacks.models import Priority
from app.db import utcnow
from tests.callbacks.queue_helpers import agent, waiting
from tests.callbacks.test_queue_pages import post, sign_in
from tests.lookup.helpers import member


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_the_call_sheet_shows_labels_a_tel_link_and_a_script(web: TestClient, session: Session) -> None:
    member_id = member(session, "CS0001", phone="07700 900321", categories="bank_details")
    request = waiting(session, member_id=member_id, phone="+447700900321")
    request.topic = "bank"
    session.flush()
    me = agent(session)
    sign_in(web, session, me)
    post(web, "/staff/queue", "/staff/queue/take")
    page = web.get(f"/staff/queue/{request.id}").text
    text = _text(page)
    assert '<a id="phone" href="tel:+447700900321">07700 900321</a>' in page
    assert "Their bank or card details" in text and re.search(r"<dd[^>]*>\s*bank\s*</dd>", page) is None
    assert "What to say" in text and "Never ask for a card number" in text


def _delivered_text(session: Session, member_id: int) -> None:
    """A text message of a draft notice, delivered to this member (as the provider's report would leave it)."""
    from app.config import ROOT
    from app.members.models import Member
    from app.notices import service as notice_service
    from app.notices.models import Channel, Delivery
    from tests.lookup.helpers import INCIDENT

    campaign = notice_service.create_campaign(
        session, name="sheet", incident_code=INCIDENT, channels=[Channel.SMS], audience=notice_service.Audience(),
        templates=notice_service.load_template_dir(ROOT / "templates" / "notices" / "breach"),
        author_email=agent(session, "admin", role="admin").email, sms_fallback=False)
    branch_id = session.get(Member, member_id).branch_id  # type: ignore[union-attr]
    session.add(Delivery(campaign_id=campaign.id, member_id=member_id, branch_id=branch_id, channel="sms",
                         language="en", variant="en", reference="SHEET0001", status="delivered", sent_at=utcnow()))
    session.flush()


def test_the_call_sheet_labels_notices_it_lists(web: TestClient, session: Session) -> None:
    member_id = member(session, "CS0002", phone="07700 900322", categories="bank_details")
    _delivered_text(session, member_id)
    request = waiting(session, member_id=member_id)
    me = agent(session)
    sign_in(web, session, me)
    post(web, "/staff/queue", "/staff/queue/take")
    notices = re.search(r'<dd id="notices">(.*?)</dd>', web.get(f"/staff/queue/{request.id}").text, re.S)
    assert notices and "Text message: delivered" in notices.group(1) and "sms" not in notices.group(1)


def test_the_call_sheet_shows_earlier_calls_their_agent_and_notes(web: TestClient, session: Session) -> None:
    request = waiting(session)
    first, second = agent(session, "first"), agent(session, "second")
    queue.take_next(session, staff_id=first.id)
    queue.record_outcome(session, staff_id=first.id, request_id=request.id, outcome=Outcome.NO_ANSWER,
                         notes="Rang twice, no voicemail")
    request.next_attempt_at = utcnow() - timedelta(minutes=1)  # the retry gap is over
    session.flush()
    sign_in(web, session, second)
    post(web, "/staff/queue", "/staff/queue/take")
    sheet = web.get(f"/staff/queue/{request.id}").text
    earlier = re.search(r'<table class="staff-table" id="earlier">(.*?)</table>', sheet, re.S)
    assert earlier, "the sheet lists the earlier calls"
    text = _text(earlier.group(1))
    assert "No answer" in text and "Rang twice, no voicemail" in text and first.email in text


def _overview_done(web: TestClient) -> str:
    found = re.search(r'<div class="panel panel--done" role="status" id="done"><p>(.*?)</p>', web.get(
        "/staff/queue/overview").text)
    return found.group(1) if found else ""


def test_a_supervisors_actions_are_confirmed(web: TestClient, session: Session) -> None:
    request = waiting(session)
    target = agent(session, "target")
    boss = agent(session, "boss", role="supervisor")
    sign_in(web, session, boss)
    moved = post(web, "/staff/queue/overview", f"/staff/queue/{request.id}/reassign", {"agent": str(target.id)})
    assert moved.status_code == 303  # type: ignore[attr-defined]
    shown = web.get(moved.headers["location"]).text  # type: ignore[attr-defined]
    assert f"{request.reference} is now with {target.email}." in shown
    released = post(web, "/staff/queue/overview", f"/staff/queue/{request.id}/release")
    assert f"{request.reference} is back in the queue." in web.get(released.headers["location"]).text  # type: ignore[attr-defined]
    raised = post(web, "/staff/queue/overview", f"/staff/queue/{request.id}/priority",
                  {"priority": str(int(Priority.URGENT))})
    assert (f"{request.reference} now has the priority: Urgent or vulnerable."
            in web.get(raised.headers["location"]).text)  # type: ignore[attr-defined]
    assert _overview_done(web) == "", "the confirmation belongs to the action, not to the page"


def test_a_supervisors_invalid_form_shows_its_error(web: TestClient, session: Session) -> None:
    request = waiting(session)
    busy = agent(session, "busy")
    other = waiting(session, due=utcnow() - timedelta(days=1))
    queue.take_next(session, staff_id=busy.id)  # takes `other`, the most overdue
    boss = agent(session, "boss", role="supervisor")
    sign_in(web, session, boss)
    bad = post(web, "/staff/queue/overview", f"/staff/queue/{request.id}/reassign", {"agent": "nobody"})
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert "There is a problem" in bad.text and f'href="#agent-{request.id}"' in bad.text  # type: ignore[attr-defined]
    assert f'id="agent-{request.id}-error"' in bad.text  # type: ignore[attr-defined]
    taken = post(web, "/staff/queue/overview", f"/staff/queue/{request.id}/reassign", {"agent": str(busy.id)})
    assert taken.status_code == 422 and "That agent is already on a call" in taken.text  # type: ignore[attr-defined]
    wrong = post(web, "/staff/queue/overview", f"/staff/queue/{request.id}/priority", {"priority": "9"})
    assert wrong.status_code == 422 and f'href="#priority-{request.id}"' in wrong.text  # type: ignore[attr-defined]
    session.refresh(request)
    assert request.status == "waiting" and request.priority == Priority.NORMAL and other.claimed_by == busy.id
