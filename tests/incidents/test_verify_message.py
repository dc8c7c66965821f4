"""Verify a message: the reference printed in a notice, typed however a person types it, gets "ours, sent on
DATE by CHANNEL" or "not ours, report it", with nothing personal shown; limited per client address."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.callbacks import service as callback_service
from app.db import utcnow
from app.kit.ratelimit import LocalLimiter
from app.lookup.verify import canonical_reference
from app.members import service as member_service
from app.messages import service as transactional
from app.messages.models import TransactionalMessage
from app.notices.models import Delivery, DeliveryStatus
from app.providers import outbox
from app.providers.outbox import OutboxEmailSender, OutboxSmsSender

from .conftest import csrf_token, visible_text

NOT_OURS = "7K2Q-9M4T-XH3D"


def ask(client: TestClient, reference: str, *, lang: str = "en") -> Any:
    token = csrf_token(client, f"/verify-message?lang={lang}")
    answer = client.post("/verify-message", data={"reference": reference, "csrf_token": token},
                         follow_redirects=False)
    return answer


def result(client: TestClient, reference: str, *, lang: str = "en") -> str:
    answer = ask(client, reference, lang=lang)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith("/verify-message/result?v=")
    page = client.get(answer.headers["location"])
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    return visible_text(page.text)


def sent(session: Session, channel: str) -> Delivery:
    return session.execute(select(Delivery).where(Delivery.channel == channel, Delivery.sent_at.is_not(None))
                           .order_by(Delivery.id).limit(1)).scalar_one()


@pytest.mark.parametrize(("typed", "canonical"), [
    ("ABCD-EFGH-JKMN", "ABCD-EFGH-JKMN"),
    ("abcd efgh jkmn", "ABCD-EFGH-JKMN"),
    ("abcdefghjkmn", "ABCD-EFGH-JKMN"),
    (" ab cd-ef gh – jk mn ", "ABCD-EFGH-JKMN"),
    ("Ref ABCD-EFGH-JKMN", "ABCD-EFGH-JKMN"),
    ("Cyf ABCD-EFGH-JKMN.", "ABCD-EFGH-JKMN"),
    ("0OI1-L234-5678", "0011-1234-5678"),
    ("ＡＢＣＤ－ＥＦＧＨ－ＪＫＭＮ", "ABCD-EFGH-JKMN"),
    ("ABCD-EFGH-JKM", None),
    ("ABCD-EFGH-JKMNP", None),
    ("ABCD-EFGH-JKMU", None),
    ("", None),
])
def test_a_reference_is_read_the_way_people_type_it(typed: str, canonical: str | None) -> None:
    assert canonical_reference(typed) == canonical


def test_a_genuine_email_reference_says_when_and_how_and_nothing_else(client: TestClient, session: Session,
                                                                      sent_campaign: Any) -> None:
    sent_campaign()
    delivery = sent(session, "email")
    assert delivery.status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
    typed = delivery.reference.lower().replace("-", " ")
    text = result(client, typed)
    assert "This message is from us" in text and delivery.reference in text
    assert f"We sent it by email on {delivery.sent_at.day} " in text  # type: ignore[union-attr]
    member = member_service.contacts(session, [delivery.member_id])[delivery.member_id]
    for personal in (member.first_name, member.last_name, member.email, member.phone, member.membership_number):
        if personal:
            assert personal not in text, "nothing personal is shown"


def test_a_genuine_text_message_reference_in_welsh(client: TestClient, session: Session,
                                                   sent_campaign: Any) -> None:
    sent_campaign()
    delivery = sent(session, "sms")
    text = result(client, f"Cyf {delivery.reference}", lang="cy")
    assert "Mae'r neges hon gennym ni" in text and "drwy neges destun" in text


def test_a_reference_that_is_not_ours_says_how_to_report_it(client: TestClient, session: Session) -> None:
    text = result(client, NOT_OURS)
    assert "This message is not from us" in text and NOT_OURS in text
    assert "report@phishing.gov.uk" in text and "7726" in text
    welsh = result(client, NOT_OURS, lang="cy")
    assert "Nid yw'r neges hon gennym ni" in welsh and "report@phishing.gov.uk" in welsh


def test_a_notice_never_handed_to_a_provider_is_not_confirmed(client: TestClient, session: Session,
                                                               sent_campaign: Any) -> None:
    sent_campaign(channels=("email",), deliver=False)
    never = session.execute(select(Delivery).where(Delivery.sent_at.is_(None)).limit(1)).scalar_one()
    assert "This message is not from us" in result(client, never.reference)


def test_each_check_is_audited_by_a_keyed_hash_of_the_reference_only(client: TestClient, session: Session) -> None:
    result(client, NOT_OURS)
    event = session.execute(select(AuditEvent).where(AuditEvent.action == "message.verify")).scalar_one()
    assert event.details["genuine"] is False and len(event.details["reference_hash"]) == 64
    assert NOT_OURS not in str(event.details) and NOT_OURS.replace("-", "") not in str(event.details)


@pytest.mark.parametrize(("typed", "says"), [
    ("", "Enter the reference code from the message"),
    ("   ", "Enter the reference code from the message"),
    ("PF-7K2Q", "12 letters and numbers"),
    ("<script>alert(1)</script>", "12 letters and numbers"),
    ("' OR 1=1 --", "12 letters and numbers"),
    ("😀😀😀😀-😀😀😀😀-😀😀😀😀", "12 letters and numbers"),
    ("\u202ekcilc ot ereh", "12 letters and numbers"),
    ("X" * 5000, "no more than 64 characters"),
])
def test_what_cannot_be_a_reference_gets_a_clear_message(client: TestClient, typed: str, says: str) -> None:
    answer = ask(client, typed)
    assert answer.status_code == 422
    assert says in answer.text and 'href="#reference"' in answer.text, "the error summary links to the field"
    assert "<script>alert(1)</script>" not in answer.text
    if typed.strip() and len(typed) < 100:
        assert 'aria-invalid="true"' in answer.text


# (A NUL the edge refuses before any page sees it.)
@pytest.mark.parametrize("typed", ["\u202eDCBA-HGFE-NMKJ", "A\u2060BCD-EFGH-JKMN\u200b"])
def test_invisible_and_control_characters_are_dropped_and_the_clean_reference_shown(client: TestClient,
                                                                                    typed: str) -> None:
    text = result(client, typed)
    assert "This message is not from us" in text
    shown = "DCBA-HGFE-NMKJ" if "DCBA" in typed else "ABCD-EFGH-JKMN"
    assert shown in text and "\u202e" not in text and "\u2060" not in text


def test_a_form_error_is_in_welsh_on_the_welsh_page(client: TestClient) -> None:
    answer = ask(client, "PF-7K2Q", lang="cy")
    assert answer.status_code == 422 and "Mae gan gyfeirnod gennym ni 12 o lythrennau a rhifau" in answer.text


def test_past_the_limit_the_answer_is_429_with_retry_after(client: TestClient) -> None:
    token = csrf_token(client, "/verify-message")
    answers = [client.post("/verify-message", data={"reference": NOT_OURS, "csrf_token": token},
                           follow_redirects=False).status_code for _ in range(11)]
    assert answers == [303] * 10 + [429]
    refused = client.post("/verify-message", data={"reference": NOT_OURS, "csrf_token": token})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert "Too many attempts" in refused.text


def test_without_the_form_token_nothing_is_checked(client: TestClient, session: Session) -> None:
    client.get("/verify-message")
    answer = client.post("/verify-message", data={"reference": NOT_OURS}, follow_redirects=False)
    assert answer.status_code == 403
    assert session.execute(select(AuditEvent).where(AuditEvent.action == "message.verify")).first() is None


def test_a_forged_or_stale_answer_sends_the_person_back_to_the_form(client: TestClient) -> None:
    answer = ask(client, NOT_OURS)
    forged = answer.headers["location"].replace("?v=", "?v=x")
    assert client.get(forged, follow_redirects=False).headers["location"] == "/verify-message"
    assert client.get("/verify-message/result", follow_redirects=False).status_code == 303


def send_now(session: Session, session_factory: sessionmaker[Session], message_id: int) -> None:
    """Send one queued one-off message through the outbox provider, as the worker would."""
    session.flush()
    assert transactional.send_one(session_factory, message_id, email_sender=OutboxEmailSender(session_factory),
                                  sms_sender=OutboxSmsSender(session_factory),
                                  limiter_for=lambda _channel: LocalLimiter(1000)) is None


def test_a_callback_confirmation_carries_a_reference_the_page_confirms_as_read_aloud(
        client: TestClient, session: Session, session_factory: sessionmaker[Session]) -> None:
    now = utcnow()
    outcome = callback_service.request_callback(
        session, member_id=None, name="Pat", phone="07700 900991", window_start=now + timedelta(hours=1),
        window_end=now + timedelta(days=3), topic="scam", urgent=False, passphrase="otter", language="en")
    assert outcome.request is not None
    message = session.execute(select(TransactionalMessage)).scalar_one()
    send_now(session, session_factory, message.id)
    text = outbox.latest(session, to="+447700900991", last=1)[0].body
    printed = re.search(r"Ref ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})$", text)
    assert printed, text
    read_aloud = printed.group(1).lower().replace("-", " ")
    page = result(client, read_aloud)
    assert "This message is from us" in page and "We sent it by text message on" in page
    assert outcome.request.reference not in page and "Pat" not in page, "nothing about the request is shown"


def test_a_one_time_code_message_is_confirmed_too_in_welsh(client: TestClient, session: Session,
                                                          session_factory: sessionmaker[Session]) -> None:
    message = transactional.queue_message(session, kind="check_code", channel="email", to="a@kent.example.org",
                                          subject="Eich cod", body="123456 yw eich cod.", language="cy")
    send_now(session, session_factory, message.id)
    body = outbox.latest(session, to="a@kent.example.org", last=1)[0].body
    assert f"Cyfeirnod y neges: {message.reference}" in body
    page = result(client, f"cyf {message.reference}", lang="cy")
    assert "Mae'r neges hon gennym ni" in page and "drwy e-bost" in page


def test_a_message_not_yet_sent_is_not_confirmed(client: TestClient, session: Session) -> None:
    message = transactional.queue_message(session, kind="callback_confirmation", channel="sms",
                                          to="+447700900992", body="Queued")
    session.flush()
    assert "This message is not from us" in result(client, str(message.reference))


def test_a_callback_reference_is_explained_and_says_nothing_about_any_request(
        client: TestClient, session: Session) -> None:
    now = utcnow()
    outcome = callback_service.request_callback(
        session, member_id=None, name="Pat", phone="07700 900993", window_start=now + timedelta(hours=1),
        window_end=now + timedelta(days=3), topic="scam", urgent=False, passphrase="otter", language="en")
    assert outcome.request is not None
    real = ask(client, outcome.request.reference.lower().replace("-", " "))
    made_up = ask(client, "CB-7K2Q-9M4T")
    for answer in (real, made_up):
        assert answer.status_code == 422
        assert "reference of a callback request" in answer.text and "7K2Q-9M4T-XH3D" in answer.text
    assert visible_text(real.text).replace(outcome.request.reference.lower().replace("-", " "), "?") == \
        visible_text(made_up.text).replace("CB-7K2Q-9M4T", "?")
    welsh = ask(client, "CB-7K2Q-9M4T", lang="cy")
    assert welsh.status_code == 422 and "gyfeirnod cais am alwad yn ôl" in welsh.text


def test_the_advice_on_the_page_matches_what_we_send(client: TestClient) -> None:
    page = visible_text(client.get("/verify-message").text)
    assert "Every email and text message we send has a reference code, like 7K2Q-9M4T-XH3D" in page
    assert "one-time codes and callback confirmations" in page and "starting CB-" in page
    assert "If the message has no reference code" in page


def test_a_result_link_shows_nothing_to_another_browser(client: TestClient, app: Any) -> None:
    answer = ask(client, NOT_OURS)
    link = answer.headers["location"]
    assert client.get(link).status_code == 200
    with TestClient(app, follow_redirects=False) as other:
        other.get("/verify-message")  # a browser of its own, with its own cookie
        copied = other.get(link)
        assert copied.status_code == 303 and copied.headers["location"] == "/verify-message"
    with TestClient(app, follow_redirects=False) as cookieless:
        assert cookieless.get(link).headers["location"] == "/verify-message"
