"""Check your status: a code to the contact on file, the code page, the member's status page."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.db import utcnow
from app.lookup.models import VerificationChallenge
from app.messages.models import TransactionalMessage
from app.providers import outbox
from tests.lookup.helpers import last_code, member, post, run_jobs


def ask_for_code(web: TestClient, identifier: str) -> None:
    answer = post(web, "/check", {"identifier": identifier})
    assert answer.status_code == 303 and answer.headers["location"] == "/check/code", answer.text


def enter_code(web: TestClient, code: str) -> object:
    return post(web, "/check/code", {"code": code})


def test_a_member_gets_a_code_by_email_and_sees_their_status(web: TestClient, session: Session,
                                                              session_factory: sessionmaker[Session]) -> None:
    member(session, "C100001", email="ann.jones@kent.example.org", categories="bank_details;police_email")
    ask_for_code(web, "  Ann.Jones@KENT.example.org ")
    page = web.get("/check/code")
    assert page.status_code == 200
    assert 'autocomplete="one-time-code"' in page.text and 'inputmode="numeric"' in page.text
    assert "a***@" not in page.text and "kent.example.org" not in page.text, "no masked contact is shown"
    run_jobs(session_factory)
    code = last_code(session, "ann.jones@kent.example.org")
    signed_in = enter_code(web, code)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/status"
    status = web.get("/status")
    assert status.status_code == 200
    assert "Your details were affected." in status.text
    assert "Bank account details" in status.text and "Police email address" in status.text
    assert "Tell your bank" in status.text and "phishing" in status.text
    assert 'href="/callback"' in status.text
    assert status.headers["cache-control"] == "no-store"
    out = post(web, "/status/sign-out", {}, form_page="/status")
    assert out.status_code == 303
    assert web.get("/status").status_code == 303, "signed out: the status page sends you to /check"


def test_a_member_without_email_gets_the_code_by_sms_with_their_membership_number(
        web: TestClient, session: Session, session_factory: sessionmaker[Session]) -> None:
    member(session, "C100002", email="", phone="07700 900456")
    ask_for_code(web, "c100002")
    run_jobs(session_factory)
    entry = outbox.latest(session, to="+447700900456", last=1)[0]
    assert entry.channel == "sms"
    code = re.search(r"\d{6}", entry.body).group(0)  # type: ignore[union-attr]
    assert enter_code(web, code).status_code == 303
    assert "We have no record that your details were affected." in web.get("/status").text


def test_a_wrong_code_is_refused_and_five_wrong_codes_end_the_check(
        web: TestClient, session: Session, session_factory: sessionmaker[Session]) -> None:
    member(session, "C100003", email="c3@kent.example.org")
    ask_for_code(web, "C100003")
    run_jobs(session_factory)
    code = last_code(session, "c3@kent.example.org")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    first = enter_code(web, wrong)
    assert first.status_code == 422 and "The code is not right" in first.text
    for _ in range(4):
        enter_code(web, wrong)
    locked = enter_code(web, code)
    assert locked.status_code == 422 and "too many times" in locked.text


def test_an_expired_code_is_refused(web: TestClient, session: Session,
                                    session_factory: sessionmaker[Session]) -> None:
    member(session, "C100004", email="c4@kent.example.org")
    ask_for_code(web, "C100004")
    run_jobs(session_factory)
    code = last_code(session, "c4@kent.example.org")
    session.execute(update(VerificationChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
    answer = enter_code(web, code)
    assert answer.status_code == 422 and "expired" in answer.text


def test_a_second_check_shares_the_code_already_sent_and_the_newest_code_works_everywhere(
        session: Session, session_factory: sessionmaker[Session], app) -> None:  # type: ignore[no-untyped-def]
    member(session, "C100005", email="c5@kent.example.org")
    with TestClient(app, follow_redirects=False) as first, TestClient(app, follow_redirects=False) as second:
        ask_for_code(first, "C100005")
        run_jobs(session_factory)
        ask_for_code(second, "C100005")
        run_jobs(session_factory)
        assert len(outbox.latest(session, to="c5@kent.example.org")) == 1, "no second code while the first works"
        old = last_code(session, "c5@kent.example.org")
        session.execute(update(VerificationChallenge).values(last_sent_at=utcnow() - timedelta(minutes=2)))
        assert post(second, "/check/code/resend", {}, form_page="/check/code").status_code == 303
        run_jobs(session_factory)
        new = last_code(session, "c5@kent.example.org")
        if new != old:
            assert enter_code(first, old).status_code == 422, "the older code stopped working"
        assert enter_code(first, new).status_code == 303, "the newest code works in the other browser too"


def test_a_new_code_after_the_cool_down(web: TestClient, session: Session,
                                        session_factory: sessionmaker[Session]) -> None:
    member(session, "C100006", email="c6@kent.example.org")
    ask_for_code(web, "C100006")
    run_jobs(session_factory)
    first = last_code(session, "c6@kent.example.org")
    too_soon = post(web, "/check/code/resend", {}, form_page="/check/code")
    assert too_soon.status_code == 422 and "Wait a minute" in too_soon.text
    session.execute(update(VerificationChallenge).values(last_sent_at=utcnow() - timedelta(minutes=2)))
    again = post(web, "/check/code/resend", {}, form_page="/check/code")
    assert again.status_code == 303 and again.headers["location"] == "/check/code?resent=1"
    run_jobs(session_factory)
    second = last_code(session, "c6@kent.example.org")
    messages = outbox.latest(session, to="c6@kent.example.org")
    assert len(messages) == 2
    if second != first:
        assert enter_code(web, first).status_code == 422, "the first code was replaced"
    assert enter_code(web, second).status_code == 303


def test_codes_and_identifiers_are_not_kept_readable(web: TestClient, session: Session,
                                                     session_factory: sessionmaker[Session]) -> None:
    member(session, "C100007", email="c7@kent.example.org")
    ask_for_code(web, "c7@kent.example.org")
    challenge = session.execute(select(VerificationChallenge)).scalars().one()
    assert challenge.identifier_enc and "c7@" not in challenge.identifier_enc
    run_jobs(session_factory)
    session.refresh(challenge)
    code = last_code(session, "c7@kent.example.org")
    assert challenge.identifier_enc is None, "cleared once looked up"
    assert code not in (challenge.code_hash or "") and len(challenge.code_hash or "") == 64
    message = session.execute(select(TransactionalMessage)).scalars().one()
    assert message.status == "sent" and message.body_enc is None, "the code's message is cleared once sent"
    for event in session.execute(select(AuditEvent)).scalars():
        text = f"{event.subject} {event.details}"
        assert "c7@" not in text and "C100007" not in text and code not in text


def test_the_check_pages_never_ask_for_a_date_of_birth_or_ni_number(web: TestClient) -> None:
    for path in ("/check",):
        page = web.get(path).text.lower()
        assert "birth" not in re.sub(r"<p>.*?</p>", "", page, flags=re.S)
        assert 'name="identifier"' in page
        assert not re.search(r'name="(dob|date_of_birth|ni_number|nino)"', page)


def test_the_whole_check_in_welsh(web: TestClient, session: Session, session_factory: sessionmaker[Session]) -> None:
    member(session, "C100008", email="c8@kent.example.org", categories="ni_number")
    page = web.get("/check?lang=cy")
    assert "Rhif aelodaeth neu gyfeiriad e-bost" in page.text and 'lang="cy"' in page.text
    refused = post(web, "/check", {"identifier": "<b>"})
    assert refused.status_code == 422 and "Rhowch rif aelodaeth" in refused.text
    ask_for_code(web, "C100008")
    assert "Rhowch eich cod" in web.get("/check/code").text
    run_jobs(session_factory)
    message = outbox.latest(session, to="c8@kent.example.org", last=1)[0]
    assert message.subject == "Eich cod i wirio eich statws" and "yw eich cod" in message.body
    wrong = enter_code(web, "000000" if "000000" not in message.body else "111111")
    assert wrong.status_code == 422 and "Nid yw'r cod yn gywir" in html.unescape(wrong.text)
    assert enter_code(web, last_code(session, "c8@kent.example.org")).status_code == 303
    status = web.get("/status")
    assert "Effeithiwyd ar eich manylion." in status.text and "Rhif Yswiriant Gwladol" in status.text
    assert "Toriad pencadlys" in status.text and "Allgofnodi" in status.text
    for english in ("Your status", "Your details were affected", "Sign out", "Messages we sent you"):
        assert english not in status.text


def test_a_member_with_only_a_landline_gets_no_code_and_the_same_page(
        web: TestClient, session: Session, session_factory: sessionmaker[Session]) -> None:
    member(session, "C100009", email="", phone="020 7946 0991")
    ask_for_code(web, "C100009")
    page = web.get("/check/code")
    assert page.status_code == 200 and "If we hold your details" in page.text
    run_jobs(session_factory)
    assert outbox.latest(session, to="+442079460991") == [], "a landline cannot take a text"
    assert session.execute(select(TransactionalMessage)).first() is None


def test_a_member_who_signed_out_can_check_again_at_once(web: TestClient, session: Session,
                                                         session_factory: sessionmaker[Session]) -> None:
    member(session, "C100010", email="c10@kent.example.org")
    ask_for_code(web, "C100010")
    run_jobs(session_factory)
    first = last_code(session, "c10@kent.example.org")
    assert enter_code(web, first).status_code == 303
    assert post(web, "/status/sign-out", {}, form_page="/status").status_code == 303
    ask_for_code(web, "C100010")
    run_jobs(session_factory)
    assert len(outbox.latest(session, to="c10@kent.example.org")) == 2, "a used code is replaced for its member"
    second = last_code(session, "c10@kent.example.org")
    if second != first:
        assert enter_code(web, first).status_code == 422, "a code works once"
    assert enter_code(web, second).status_code == 303
