"""The call sheet's script takes each exposed category's guidance from the one source pages and notices use
(issue 17, item 3), and has a line that fits a caller matched to no member."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.incidents import service as incident_service
from tests.callbacks.queue_helpers import agent, waiting
from tests.callbacks.test_queue_pages import post, sign_in
from tests.lookup.helpers import INCIDENT, member


def _script(web: TestClient, request_id: int) -> str:
    page = web.get(f"/staff/queue/{request_id}").text
    found = re.search(r'<div class="panel script" id="script">(.*?)</div>', page, re.S)
    assert found, page
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1)))


def _call(web: TestClient, session: Session, *, member_id: int | None, topic: str) -> str:
    request = waiting(session, member_id=member_id, phone="+447700900361")
    request.topic = topic
    session.flush()
    sign_in(web, session, agent(session))
    post(web, "/staff/queue", "/staff/queue/take")
    return _script(web, request.id)


def test_the_script_reads_each_exposed_categorys_guidance_from_the_one_source(web: TestClient,
                                                                              session: Session) -> None:
    member_id = member(session, "CS1301", phone="07700 900361", categories="bank_details;card_details")
    incident_service.set_guidance(session, code=INCIDENT, category="bank_details", actor="test",
                                  en="Call **159** to reach your bank safely.", cy="Ffoniwch 159.")
    card = incident_service.guidance_sources(session, incident_id=incident_service.incident_by_code(
        session, INCIDENT).id, lang="en")["card_details"]
    script = _call(web, session, member_id=member_id, topic="bank")
    assert "Call 159 to reach your bank safely." in script, "the incident's own words, as on pages and notices"
    assert re.sub(r"[*_#`]", "", card).split(".")[0] in script, "the standing guidance of the other category"
    assert "number on their card" not in script and "Never ask for a card number" in script


def test_a_caller_matched_to_no_member_gets_a_script_that_fits(web: TestClient, session: Session) -> None:
    member(session, "CS1302", phone="07700 900361", categories="bank_details")  # the same phone proves nothing
    script = _call(web, session, member_id=None, topic="bank")
    assert "We have no record that their details were exposed" in script
    assert "Tell them which financial details were exposed" not in script and "159" not in script
