"""Transactional messages: persisted first, sent through the real SDKs, retried a bounded number of times,
never sent once useless, and swept back to the queue when the queue or a worker lost them."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db import utcnow
from app.kit.ratelimit import LocalLimiter
from app.messages import service
from app.messages.models import TransactionalMessage
from app.providers.sendgrid import SendGridEmailSender
from app.providers.twilio import TwilioSmsSender
from app.worker import _JOBS
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.fakes.twilio_server import FakeTwilio


def send(factory: sessionmaker[Session], message_id: int, email: SendGridEmailSender,
         sms: TwilioSmsSender) -> float | None:
    return service.send_one(factory, message_id, email_sender=email, sms_sender=sms,
                            limiter_for=lambda _channel: LocalLimiter(1000))


def queued_jobs(session: Session) -> list[tuple[str, dict[str, int]]]:
    return list(session.info.get(_JOBS, []))


def test_a_message_is_a_row_before_its_id_is_queued_and_the_queue_carries_no_contact(session: Session) -> None:
    message = service.queue_message(session, kind="check_code", channel="sms", to="+447700900123", body="123456 code")
    assert message.id is not None and message.status == "queued"
    assert "+447700900123" not in message.to_enc and "123456" not in (message.body_enc or "")
    assert queued_jobs(session) == [(service.SEND_CODE_ACTOR, {"message_id": message.id})]


def test_codes_and_other_messages_go_to_queues_of_their_own(session: Session) -> None:
    from app.worker import Queues, broker, load_actors

    load_actors()
    code = service.queue_message(session, kind="check_code", channel="sms", to="+447700900123", body="1")
    confirmation = service.queue_message(session, kind="callback_confirmation", channel="sms",
                                         to="+447700900124", body="2")
    jobs = {kw["message_id"]: name for name, kw in queued_jobs(session)}
    assert broker.get_actor(jobs[code.id]).queue_name == Queues.TRANSACTIONAL
    assert broker.get_actor(jobs[confirmation.id]).queue_name == Queues.MESSAGES
    # The lookup jobs that send a code in the same job share the codes' queue.
    assert broker.get_actor("lookup.resolve_challenge").queue_name == Queues.TRANSACTIONAL
    assert broker.get_actor(jobs[code.id]).priority < broker.get_actor(jobs[confirmation.id]).priority


def test_sent_through_the_real_sdks_and_the_content_cleared(
        session: Session, session_factory: sessionmaker[Session], sendgrid_sender: SendGridEmailSender,
        sendgrid_fake: FakeSendGrid, twilio_sender: TwilioSmsSender, twilio_fake: FakeTwilio) -> None:
    text = service.queue_message(session, kind="check_code", channel="sms", to="+447700900123", body="123456 is it")
    mail = service.queue_message(session, kind="check_code", channel="email", to="a@kent.example.org",
                                 subject="Your code", body="654321 is it")
    session.flush()
    assert send(session_factory, text.id, sendgrid_sender, twilio_sender) is None
    assert send(session_factory, mail.id, sendgrid_sender, twilio_sender) is None
    assert [(m.to, m.body) for m in twilio_fake.messages] == [("+447700900123", f"123456 is it Ref {text.reference}")]
    assert len(sendgrid_fake.messages) == 1
    assert sendgrid_fake.messages[0].text.startswith("654321 is it\n\nMessage reference: " + str(mail.reference))
    for message in (text, mail):
        session.refresh(message)
        assert message.status == "sent" and message.body_enc is None and message.provider_message_id


def test_retryable_failures_back_off_and_end_after_the_maximum_attempts(
        session: Session, session_factory: sessionmaker[Session], sendgrid_sender: SendGridEmailSender,
        twilio_sender: TwilioSmsSender, twilio_fake: FakeTwilio) -> None:
    message = service.queue_message(session, kind="check_code", channel="sms", to="+447700900124", body="1")
    session.flush()
    twilio_fake.fail_next(10, status=503)
    delay = send(session_factory, message.id, sendgrid_sender, twilio_sender)
    session.refresh(message)
    assert delay is not None and delay > 0 and message.status == "queued" and message.attempts == 1
    assert send(session_factory, message.id, sendgrid_sender, twilio_sender) is None, "not due yet: not sent"
    for _ in range(10):
        session.execute(update(TransactionalMessage).values(next_attempt_at=utcnow()))
        if send(session_factory, message.id, sendgrid_sender, twilio_sender) is None:
            break
    session.refresh(message)
    assert message.status == "failed" and message.attempts == 5 and message.body_enc is None
    assert twilio_fake.messages == []


def test_a_permanent_failure_ends_at_once(session: Session, session_factory: sessionmaker[Session],
                                          sendgrid_sender: SendGridEmailSender, twilio_sender: TwilioSmsSender,
                                          twilio_fake: FakeTwilio) -> None:
    message = service.queue_message(session, kind="check_code", channel="sms", to="+447700900125", body="1")
    session.flush()
    twilio_fake.fail_next(1, status=400, code=21211, message="Invalid 'To' Phone Number")
    assert send(session_factory, message.id, sendgrid_sender, twilio_sender) is None
    session.refresh(message)
    assert message.status == "failed" and message.attempts == 1


def test_a_code_past_its_expiry_is_not_sent(session: Session, session_factory: sessionmaker[Session],
                                            sendgrid_sender: SendGridEmailSender, twilio_sender: TwilioSmsSender,
                                            twilio_fake: FakeTwilio) -> None:
    message = service.queue_message(session, kind="check_code", channel="sms", to="+447700900126", body="1",
                                    expires_at=utcnow() - timedelta(seconds=1))
    session.flush()
    assert send(session_factory, message.id, sendgrid_sender, twilio_sender) is None
    session.refresh(message)
    assert message.status == "expired" and twilio_fake.messages == []


def test_the_sweeper_requeues_what_the_queue_or_a_killed_worker_lost(session: Session) -> None:
    lost = service.queue_message(session, kind="check_code", channel="sms", to="+447700900127", body="1")
    leased = service.queue_message(session, kind="check_code", channel="sms", to="+447700900128", body="2")
    fresh = service.queue_message(session, kind="check_code", channel="sms", to="+447700900129", body="3")
    now = utcnow()
    lost.next_attempt_at = now - timedelta(minutes=1)
    leased.status, leased.lease_until = "sending", now - timedelta(seconds=1)
    session.flush()
    session.info.pop(_JOBS, None)
    assert service.sweep(session) == 2
    assert sorted(kw["message_id"] for _, kw in queued_jobs(session)) == sorted([lost.id, leased.id])
    assert leased.status == "queued" and fresh.status == "queued"
    assert session.execute(select(TransactionalMessage).where(TransactionalMessage.status == "sending")).first() is None


def test_portal_worker_keeps_threads_that_only_take_transactional_jobs() -> None:
    from app.worker import Queues, load_actors, scaled_worker, transactional_worker

    load_actors()
    codes = transactional_worker(2)
    campaigns = scaled_worker(8)
    assert codes.consumer_whitelist == {Queues.TRANSACTIONAL, Queues.MESSAGES} and codes.worker_threads == 2
    assert not {Queues.TRANSACTIONAL, Queues.MESSAGES} & campaigns.consumer_whitelist
    assert {Queues.EMAIL, Queues.SMS, Queues.PLANNING} <= campaigns.consumer_whitelist


def test_every_message_carries_its_own_reference_in_the_notices_format_and_its_language(
        session: Session, session_factory: sessionmaker[Session], sendgrid_sender: SendGridEmailSender,
        sendgrid_fake: FakeSendGrid, twilio_sender: TwilioSmsSender, twilio_fake: FakeTwilio) -> None:
    sms_cy = service.queue_message(session, kind="callback_confirmation", channel="sms", to="+447700900130",
                                   body="Neges", language="cy")
    mail_cy = service.queue_message(session, kind="callback_unreachable", channel="email", to="b@kent.example.org",
                                    subject="Pwnc", body="Neges", language="cy")
    mail_en = service.queue_message(session, kind="check_code", channel="email", to="c@kent.example.org",
                                    subject="Code", body="Message")
    session.flush()
    references = {m.reference for m in (sms_cy, mail_cy, mail_en)}
    assert len(references) == 3
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", str(r))
               for r in references)
    for message in (sms_cy, mail_cy, mail_en):
        assert send(session_factory, message.id, sendgrid_sender, twilio_sender) is None
    assert twilio_fake.messages[0].body == f"Neges Cyf {sms_cy.reference}"
    welsh, english = sendgrid_fake.messages
    assert f"Cyfeirnod y neges: {mail_cy.reference}." in welsh.text and "/verify-message" in welsh.text
    assert welsh.content.from_name == "Cymdeithas Staff yr Heddlu"
    assert f"Message reference: {mail_en.reference}." in english.text
    assert english.content.from_name == "Police Staff Association"
