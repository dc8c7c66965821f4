"""The fakes' webhooks verify with the SDKs' own helpers, and tampering is detected."""

from __future__ import annotations

import json

import pytest
from sendgrid.helpers.eventwebhook import EventWebhook, EventWebhookHeader
from twilio.request_validator import RequestValidator

from app.providers.base import EmailBatch, EmailRecipient, SmsMessage
from app.providers.sendgrid import SendGridEmailSender
from app.providers.twilio import TwilioSmsSender
from tests.fakes.base import ReceivedWebhook, WebhookSink
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.fakes.twilio_server import FakeTwilio, Outcome


def make_batch(n: int) -> EmailBatch:
    recipients = [
        EmailRecipient(f"member{i}@example.com", {}, {"member_id": str(i), "notice_id": "n1"})
        for i in range(n)
    ]
    return EmailBatch("notices@example.org", "Notices", "Notice", "<p>Notice</p>", "Notice", recipients)


def sendgrid_verifies(
    fake: FakeSendGrid, hook: ReceivedWebhook, body: str | None = None, ts: str | None = None
) -> bool:
    return EventWebhook(fake.webhook_public_key).verify_signature(
        hook.text if body is None else body,
        hook.headers[EventWebhookHeader.SIGNATURE.lower()],
        hook.headers[EventWebhookHeader.TIMESTAMP.lower()] if ts is None else ts,
    )


def test_public_key_is_in_sdk_format(sendgrid_fake: FakeSendGrid) -> None:
    key = EventWebhook().convert_public_key_to_ecdsa(sendgrid_fake.webhook_public_key)
    assert key.curve.name == "secp256r1"


def test_sendgrid_events_verify_and_tampering_fails(
    sendgrid_fake: FakeSendGrid, webhook_sink: WebhookSink
) -> None:
    sendgrid_fake.webhook_url = webhook_sink.url + "/webhooks/sendgrid"
    assert (
        sendgrid_fake.post_events([{"email": "a@example.com", "event": "delivered", "member_id": "7"}]) == 200
    )
    [hook] = webhook_sink.received

    assert sendgrid_verifies(sendgrid_fake, hook)
    assert not sendgrid_verifies(sendgrid_fake, hook, body=hook.text.replace('"7"', '"8"'))
    assert not sendgrid_verifies(
        sendgrid_fake, hook, ts=str(int(hook.headers["x-twilio-email-event-webhook-timestamp"]) + 1)
    )
    assert not sendgrid_verifies(FakeSendGrid(), hook)  # another key pair


def test_sendgrid_deliver_all_builds_events_from_recorded_sends(
    sendgrid_fake: FakeSendGrid, sendgrid_sender: SendGridEmailSender, webhook_sink: WebhookSink
) -> None:
    sendgrid_fake.webhook_url = webhook_sink.url + "/webhooks/sendgrid"
    x_message_id = sendgrid_sender.send_batch(make_batch(3)).provider_message_id
    outcomes = {
        "member0@example.com": "delivered",
        "member1@example.com": "bounce",
        "member2@example.com": "dropped",
    }

    assert sendgrid_fake.deliver_all(outcome_for=lambda m: outcomes[m.email]) == 5
    assert sendgrid_fake.deliver_all() == 0  # already reported

    [hook] = webhook_sink.received
    assert sendgrid_verifies(sendgrid_fake, hook)
    events = json.loads(hook.text)
    assert [(e["email"], e["event"]) for e in events] == [
        ("member0@example.com", "processed"),
        ("member0@example.com", "delivered"),
        ("member1@example.com", "processed"),
        ("member1@example.com", "bounce"),
        ("member2@example.com", "dropped"),
    ]
    assert all(e["sg_message_id"].startswith(f"{x_message_id}.filter") for e in events)
    assert len({e["sg_event_id"] for e in events}) == 5
    assert events[3]["member_id"] == "1" and events[3]["notice_id"] == "n1"
    assert events[3]["type"] == "bounce"


def test_sendgrid_auto_webhooks(
    sendgrid_fake: FakeSendGrid, sendgrid_sender: SendGridEmailSender, webhook_sink: WebhookSink
) -> None:
    sendgrid_fake.webhook_url = webhook_sink.url + "/webhooks/sendgrid"
    sendgrid_fake.auto_webhooks = True
    sendgrid_sender.send_batch(make_batch(2))
    [hook] = webhook_sink.wait_for(1)
    assert sendgrid_verifies(sendgrid_fake, hook)
    assert [e["event"] for e in json.loads(hook.text)] == ["processed", "delivered"] * 2


def test_sendgrid_posts_a_refused_batch_again_until_it_is_taken(
    sendgrid_fake: FakeSendGrid, sendgrid_sender: SendGridEmailSender, webhook_sink: WebhookSink
) -> None:
    sendgrid_fake.webhook_url = webhook_sink.url + "/webhooks/sendgrid"
    sendgrid_fake.auto_webhooks = True
    sendgrid_fake.webhook_retry_delays = (0.3, 0.3, 0.3, 0.3)
    webhook_sink.status = 503
    sendgrid_sender.send_batch(make_batch(1))
    webhook_sink.wait_for(1)
    webhook_sink.status = 200
    hooks = webhook_sink.wait_for(2)
    sendgrid_fake.webhooks.drain()
    assert len(hooks) >= 2 and len(webhook_sink.received) == len(hooks), "no post after the one taken"
    assert len({h.text for h in hooks}) == 1 and all(sendgrid_verifies(sendgrid_fake, h) for h in hooks)
    assert sendgrid_fake.webhooks_sent == 1 and sendgrid_fake.webhook_failures == len(hooks) - 1


def twilio_verifies(token: str, hook: ReceivedWebhook, params: dict[str, str] | None = None) -> bool:
    return RequestValidator(token).validate(
        hook.url, hook.form() if params is None else params, hook.headers["x-twilio-signature"]
    )


@pytest.mark.parametrize("path", ["/webhooks/twilio/status", "/webhooks/twilio/status?notice=n1&member=7"])
def test_twilio_callbacks_verify_and_tampering_fails(
    twilio_fake: FakeTwilio, twilio_sender: TwilioSmsSender, webhook_sink: WebhookSink, path: str
) -> None:
    twilio_fake.auto_callbacks = True
    result = twilio_sender.send(SmsMessage("+447700900123", "hello", webhook_sink.url + path))
    hooks = webhook_sink.wait_for(2)

    assert [h.form()["MessageStatus"] for h in hooks] == ["sent", "delivered"]
    for hook in hooks:
        assert hook.url == webhook_sink.url + path
        assert hook.form()["MessageSid"] == result.provider_message_id
        assert hook.form()["AccountSid"] == twilio_fake.account_sid
        assert twilio_verifies(twilio_fake.auth_token, hook)
        assert not twilio_verifies("another-token", hook)
        assert not twilio_verifies(twilio_fake.auth_token, hook, {**hook.form(), "MessageStatus": "failed"})


def test_twilio_deliver_all_reports_failures_with_error_codes(
    twilio_fake: FakeTwilio, twilio_sender: TwilioSmsSender, webhook_sink: WebhookSink
) -> None:
    callback = webhook_sink.url + "/webhooks/twilio/status"
    twilio_sender.send(SmsMessage("+447700900001", "a", callback))
    twilio_sender.send(SmsMessage("+447700900002", "b", callback))
    twilio_sender.send(SmsMessage("+447700900003", "c", None))  # no callback, nothing posted
    outcomes: dict[str, Outcome] = {"+447700900001": "undelivered", "+447700900002": ("failed", 30007)}

    assert twilio_fake.deliver_all(lambda s: outcomes[s.to]) == 3
    forms = [h.form() for h in webhook_sink.received]
    assert [(f["To"], f["MessageStatus"], f.get("ErrorCode")) for f in forms] == [
        ("+447700900001", "sent", None),
        ("+447700900001", "undelivered", "30003"),
        ("+447700900002", "failed", "30007"),
    ]
    assert all(twilio_verifies(twilio_fake.auth_token, h) for h in webhook_sink.received)
    assert twilio_fake.stats()["webhooks_sent"] == 3
