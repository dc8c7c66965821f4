"""A one-time code asked for while a campaign sends, or while hundreds of callback confirmations wait, reaches
the member long before they are all sent.

Real `portal worker` and `portal serve` processes on PostgreSQL and Redis, the real Twilio SDK against
the fake Twilio: the code goes through the same provider and the same global pacing as the campaign's
texts, on its own queue and worker threads.
"""

from __future__ import annotations

import re
from typing import Any

import dramatiq
import httpx
import pytest
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.members import pii
from app.messages import service as transactional
from app.messages.tasks import send_transactional
from tests.stack import wait_until

pytestmark = pytest.mark.scaled


def csrf(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert match, page.text
    return match.group(1)


def test_a_code_asked_for_mid_campaign_arrives_while_thousands_are_still_queued(e2e: Any) -> None:
    # Slow enough that the campaign's texts take a minute or so: the limit every text shares.
    e2e.stack.env["PORTAL_TWILIO_MESSAGES_PER_SECOND"] = "50"
    e2e.stack.start_worker()
    number, phone_enc = e2e.sql("SELECT membership_number, phone_enc FROM members WHERE email_enc IS NULL "
                                "AND phone_enc IS NOT NULL ORDER BY id LIMIT 1")[0]
    phone = pii.open_phone(phone_enc)
    campaign_id = e2e.start_campaign("--channels", "sms")
    wait_until(lambda: len(e2e.twilio.messages) >= 100, 120, 0.1, what="the campaign's texts to be under way")

    with httpx.Client(base_url=e2e.stack.base_url, follow_redirects=False, timeout=10,
                      trust_env=False) as web:
        asked = web.post("/check", data={"identifier": number, "csrf_token": csrf(web, "/check")})
        assert asked.status_code == 303 and asked.headers["location"] == "/check/code"

        def code_text() -> Any:
            return next((m for m in e2e.twilio.messages if m.to == phone and "code" in m.body), None)

        message = wait_until(code_text, 60, 0.05, what="the code to reach the fake Twilio")
        still_queued = e2e.pending(campaign_id)
        sent_before_code = e2e.twilio.messages.index(message)
        print(f"the code arrived after {sent_before_code} campaign texts, with {still_queued} still to send")
        assert still_queued >= 1000, "the code went ahead of the campaign, not after it"

        code = re.search(r"\b(\d{6})\b", message.body).group(1)  # type: ignore[union-attr]
        checked = web.post("/check/code", data={"code": code, "csrf_token": csrf(web, "/check/code")})
        assert checked.status_code == 303 and checked.headers["location"] == "/status"
        status = web.get("/status")
        assert status.status_code == 200 and "Your status" in status.text

    rows = e2e.sql("SELECT status, attempts FROM transactional_messages")
    assert rows == [("sent", 1)]


CONFIRMATIONS = 300


def test_a_code_goes_ahead_of_hundreds_of_queued_callback_confirmations(e2e: Any) -> None:
    # Slow enough that the confirmations take a while: the limit every text shares.
    e2e.stack.env["PORTAL_TWILIO_MESSAGES_PER_SECOND"] = "20"
    number, phone_enc = e2e.sql("SELECT membership_number, phone_enc FROM members WHERE email_enc IS NULL "
                                "AND phone_enc IS NOT NULL ORDER BY id LIMIT 1")[0]
    phone = pii.open_phone(phone_enc)
    # Confirmations as the callback pages make them, each a row and a job on the confirmations' own queue,
    # all queued before the worker starts (as after a busy hour of requests).
    engine = create_engine(e2e.url)
    with Session(engine) as session:
        ids = [transactional.queue_message(session, kind="callback_confirmation", channel="sms",
                                           to=f"+447700900{n:03d}", body=f"We will call you back. Request {n}.",
                                           enqueue_send=False).id for n in range(CONFIRMATIONS)]
        session.commit()
    engine.dispose()
    redis_broker = RedisBroker(url=e2e.stack.redis_url)
    redis_broker.declare_queue(send_transactional.queue_name)
    for message_id in ids:
        redis_broker.enqueue(dramatiq.Message(queue_name=send_transactional.queue_name,
                                              actor_name=send_transactional.actor_name, args=(),
                                              kwargs={"message_id": message_id}, options={}))
    redis_broker.close()
    e2e.stack.start_worker()
    wait_until(lambda: len(e2e.twilio.messages) >= 10, 120, 0.1, what="the confirmations to be under way")

    with httpx.Client(base_url=e2e.stack.base_url, follow_redirects=False, timeout=10,
                      trust_env=False) as web:
        asked = web.post("/check", data={"identifier": number, "csrf_token": csrf(web, "/check")})
        assert asked.status_code == 303

        def code_text() -> Any:
            return next((m for m in e2e.twilio.messages if m.to == phone and "code" in m.body), None)

        message = wait_until(code_text, 120, 0.05, what="the code to reach the fake Twilio")
        confirmations_before = sum(1 for m in e2e.twilio.messages[:e2e.twilio.messages.index(message)]
                                   if "We will call you back" in m.body)
    print(f"the code went after {confirmations_before} of {CONFIRMATIONS} queued confirmations")
    assert confirmations_before <= CONFIRMATIONS // 2, "the code waited behind the confirmations"
    assert re.search(r"Ref [0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$", message.body), "the code carries its reference"
    wait_until(lambda: e2e.sql("SELECT count(*) FROM transactional_messages WHERE status = 'sent'")[0][0]
               == CONFIRMATIONS + 1, 120, what="every confirmation to be sent after the code")
