"""Provider webhooks: signatures and freshness checked with the SDK helpers, deduplicated, forward-only,
a whole batch in one transaction; forged, stale and replayed posts change nothing."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.members import service as member_service
from app.notices.models import Channel, DeliveryStatus, ProviderEvent, Suppression
from app.notices.webhooks import SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP, TWILIO_SIGNATURE

from .conftest import deliveries
from .test_sending import run


@pytest.fixture
def webhook_client(session_factory: sessionmaker[Session], sendgrid_fake: Any, twilio_fake: Any) -> Any:
    from app.main import create_app

    settings = Settings(SENDGRID_WEBHOOK_PUBLIC_KEY=sendgrid_fake.webhook_public_key,
                        TWILIO_AUTH_TOKEN=twilio_fake.auth_token, PUBLIC_BASE_URL="https://portal.example.org")
    application = create_app(settings, run_embedded_worker=False)
    application.state.session_factory = session_factory
    with TestClient(application) as client:
        yield client


def post_sendgrid(client: TestClient, fake: Any, events: list[dict[str, Any]], *, timestamp: int | None = None,
                  signature: str | None = None) -> Any:
    body = json.dumps(events) + "\r\n"
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {"Content-Type": "application/json", SENDGRID_TIMESTAMP: stamp,
               SENDGRID_SIGNATURE: signature if signature is not None else fake.sign(body, stamp)}
    return client.post("/webhooks/sendgrid", content=body.encode(), headers=headers)


@pytest.fixture
def sent_email(session: Session, session_factory: Any, sending_campaign: Any, sendgrid_fake: Any,
               sendgrid_sender: Any) -> Any:
    campaign = sending_campaign(branches=["kent"])
    run(session_factory, campaign.id, "email", email=sendgrid_sender)
    assert sendgrid_fake.messages
    return campaign


def event_rows(session: Session) -> int:
    return session.execute(select(func.count()).select_from(ProviderEvent)).scalar_one()


def test_signed_events_move_deliveries_forward(session: Session, webhook_client: TestClient, sendgrid_fake: Any,
                                               sent_email: Any) -> None:
    events = [e for m in sendgrid_fake.messages for e in sendgrid_fake.build_events(m, "delivered")]
    assert post_sendgrid(webhook_client, sendgrid_fake, events).status_code == 204
    email = [d for d in deliveries(session, sent_email.id, "email") if d.provider_message_id]
    assert email and all(d.status == DeliveryStatus.DELIVERED and d.delivered_at for d in email)
    assert event_rows(session) == len(events)
    stored = session.execute(select(ProviderEvent.payload)).scalars().first()
    assert "email" not in stored, "the event log keeps no addresses"


def test_forged_stale_and_unsigned_posts_get_403_and_change_nothing(
        session: Session, webhook_client: TestClient, sendgrid_fake: Any, sent_email: Any) -> None:
    events = [e for m in sendgrid_fake.messages[:5] for e in sendgrid_fake.build_events(m, "delivered")]
    forged = post_sendgrid(webhook_client, sendgrid_fake, events, signature=sendgrid_fake.sign("[]", "1"))
    stale = post_sendgrid(webhook_client, sendgrid_fake, events, timestamp=int(time.time()) - 3600)
    garbage = post_sendgrid(webhook_client, sendgrid_fake, events, signature="not base64!")
    unsigned = webhook_client.post("/webhooks/sendgrid", content=json.dumps(events))
    body = json.dumps(events)
    stamp = str(int(time.time()))
    tampered = webhook_client.post(
        "/webhooks/sendgrid", content=body.replace("delivered", "bounce").encode(),
        headers={SENDGRID_TIMESTAMP: stamp, SENDGRID_SIGNATURE: sendgrid_fake.sign(body, stamp)})
    assert [r.status_code for r in (forged, stale, garbage, unsigned, tampered)] == [403] * 5
    assert forged.json() == {"error": "signature does not match"}
    assert event_rows(session) == 0
    assert all(d.status in (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.QUEUED)
               for d in deliveries(session, sent_email.id))


def test_a_replayed_batch_is_applied_once_and_late_events_never_move_back(
        session: Session, webhook_client: TestClient, sendgrid_fake: Any, sent_email: Any) -> None:
    record = sendgrid_fake.messages[0]
    processed, delivered = sendgrid_fake.build_events(record, "delivered")
    assert post_sendgrid(webhook_client, sendgrid_fake, [delivered]).status_code == 204
    # The replay (same sg_event_id) and a late "processed" arrive afterwards.
    assert post_sendgrid(webhook_client, sendgrid_fake, [delivered, processed, delivered]).status_code == 204
    d = next(x for x in deliveries(session, sent_email.id) if str(x.id) == record.custom_args["delivery_id"])
    assert d.status == DeliveryStatus.DELIVERED
    assert event_rows(session) == 2


def test_a_bounce_marks_the_email_bounced_suppresses_the_address_and_sends_the_sms_version(
        session: Session, webhook_client: TestClient, sendgrid_fake: Any, sent_email: Any) -> None:
    by_id = {str(d.id): d for d in deliveries(session, sent_email.id, "email")}
    record = next(m for m in sendgrid_fake.messages
                  if member_service.contacts(session, [by_id[m.custom_args["delivery_id"]].member_id])
                  [by_id[m.custom_args["delivery_id"]].member_id].phone)
    events = sendgrid_fake.build_events(record, "bounce")
    assert post_sendgrid(webhook_client, sendgrid_fake, events).status_code == 204
    email = next(d for d in deliveries(session, sent_email.id, "email")
                 if str(d.id) == record.custom_args["delivery_id"])
    assert email.status == DeliveryStatus.BOUNCED and email.error_code == "bounce"
    sms = [d for d in deliveries(session, sent_email.id, "sms") if d.fallback_of_id == email.id]
    assert len(sms) == 1 and sms[0].status == DeliveryStatus.QUEUED
    assert session.execute(select(func.count()).select_from(Suppression)
                           .where(Suppression.channel == "email")).scalar_one() == 1
    # A late "delivered" for a bounced email does not resurrect it.
    late = [e for e in sendgrid_fake.build_events(record, "delivered") if e["event"] == "delivered"]
    post_sendgrid(webhook_client, sendgrid_fake, late)
    again = next(d for d in deliveries(session, sent_email.id, "email") if d.id == email.id)
    assert again.status == DeliveryStatus.BOUNCED


def test_events_for_unknown_deliveries_are_kept_not_crashed_on(
        session: Session, webhook_client: TestClient, sendgrid_fake: Any, sent_email: Any) -> None:
    record = sendgrid_fake.messages[0]
    events = sendgrid_fake.build_events(record, "delivered")
    events[1]["delivery_id"] = "999999999"
    events[0].pop("delivery_id")
    events.append({"event": "open", "sg_event_id": "x1", "timestamp": "not a time", "delivery_id": "abc"})
    assert post_sendgrid(webhook_client, sendgrid_fake, events).status_code == 204
    kept = session.execute(select(ProviderEvent.delivery_id)).scalars().all()
    assert len(kept) == 3 and kept == [None, None, None]


def test_a_body_that_is_not_an_event_list_is_refused(webhook_client: TestClient, sendgrid_fake: Any) -> None:
    stamp = str(int(time.time()))
    body = '{"event": "delivered"}'
    response = webhook_client.post("/webhooks/sendgrid", content=body,
                                   headers={SENDGRID_TIMESTAMP: stamp,
                                            SENDGRID_SIGNATURE: sendgrid_fake.sign(body, stamp)})
    assert response.status_code == 400


# --- Twilio -------------------------------------------------------------------------------------
def post_twilio(client: TestClient, fake: Any, sms: Any, status: str, *, error_code: int | None = None,
                forge: bool = False) -> Any:
    path = sms.status_callback.split("://", 1)[1].split("/", 1)[1]
    public = "https://portal.example.org/" + path
    params = fake.callback_params(sms, status, error_code)
    signature = fake.sign(public if not forge else public + "x", params)
    return client.post("/" + path, content=urlencode(params),
                       headers={"Content-Type": "application/x-www-form-urlencoded", TWILIO_SIGNATURE: signature})


@pytest.fixture
def sent_sms(session: Session, session_factory: Any, sending_campaign: Any, twilio_fake: Any, twilio_sender: Any,
             monkeypatch: Any) -> Any:
    from app.config import get_settings

    monkeypatch.setattr(get_settings(), "PUBLIC_BASE_URL", "https://portal.example.org")
    campaign = sending_campaign(channels=(Channel.SMS,), branches=["kent"])
    run(session_factory, campaign.id, "sms", sms=twilio_sender)
    assert twilio_fake.messages
    return campaign


def test_twilio_callbacks_are_verified_against_the_public_address(
        session: Session, webhook_client: TestClient, twilio_fake: Any, sent_sms: Any) -> None:
    sms = twilio_fake.messages[0]
    assert post_twilio(webhook_client, twilio_fake, sms, "delivered", forge=True).status_code == 403
    assert post_twilio(webhook_client, twilio_fake, sms, "sent").status_code == 204
    assert post_twilio(webhook_client, twilio_fake, sms, "delivered").status_code == 204
    assert post_twilio(webhook_client, twilio_fake, sms, "sent").status_code == 204  # replayed, late
    d = next(x for x in deliveries(session, sent_sms.id, "sms") if x.provider_message_id == sms.sid)
    assert d.status == DeliveryStatus.DELIVERED
    assert event_rows(session) == 2


def test_an_undelivered_sms_keeps_twilios_code_and_a_stop_reply_suppresses_the_number(
        session: Session, webhook_client: TestClient, twilio_fake: Any, sent_sms: Any) -> None:
    sms = twilio_fake.messages[0]
    assert post_twilio(webhook_client, twilio_fake, sms, "undelivered", error_code=21610).status_code == 204
    d = next(x for x in deliveries(session, sent_sms.id, "sms") if x.provider_message_id == sms.sid)
    assert (d.status, d.error_code) == (DeliveryStatus.FAILED, "21610")
    assert session.execute(select(func.count()).select_from(Suppression)
                           .where(Suppression.channel == "sms")).scalar_one() == 1


# --- signed but hostile ---------------------------------------------------------------------------
def post_raw_sendgrid(client: TestClient, fake: Any, body: str) -> Any:
    stamp = str(int(time.time()))
    return client.post("/webhooks/sendgrid", content=body.encode(),
                       headers={"Content-Type": "application/json", SENDGRID_TIMESTAMP: stamp,
                                SENDGRID_SIGNATURE: fake.sign(body, stamp)})


def stored_events(session: Session) -> list[ProviderEvent]:
    session.expire_all()
    return list(session.execute(select(ProviderEvent).order_by(ProviderEvent.id)).scalars())


def test_a_signed_hostile_batch_applies_its_good_events_and_keeps_each_bad_one_with_why(
        session: Session, webhook_client: TestClient, sendgrid_fake: Any, sent_email: Any) -> None:
    good = [e for m in sendgrid_fake.messages[:3] for e in sendgrid_fake.build_events(m, "delivered")]
    hostile = [
        {"event": "delivered", "sg_event_id": "big", "delivery_id": "9" * 30},  # beyond BIGINT
        {"event": "delivered", "sg_event_id": "neg", "delivery_id": "-7"},
        {"event": "bounce", "sg_event_id": "nul\u0000id", "delivery_id": good[1]["delivery_id"]},
        {"event": "bounce", "sg_event_id": "long-type", "type": "x" * 5000, "delivery_id": good[1]["delivery_id"]},
        {"event": "x" * 500, "sg_event_id": "long-name"},
        {"event": ["delivered"], "sg_event_id": "wrong-type"},
        {"event": "delivered", "timestamp": 10**30, "sg_event_id": "far-future"},
        42, "a string", None,
    ]
    deep = '{"event": "open", "sg_event_id": "deep", "nested": ' + "[" * 50_000 + "]" * 50_000 + "}"
    body = "[" + ", ".join([*(json.dumps(e) for e in good), deep, *(json.dumps(e) for e in hostile)]) + "]\r\n"
    response = post_raw_sendgrid(webhook_client, sendgrid_fake, body)
    assert response.status_code == 204
    applied = {int(e["delivery_id"]) for e in good}
    email = {d.id: d for d in deliveries(session, sent_email.id, "email")}
    assert all(email[i].status == DeliveryStatus.DELIVERED for i in applied), "the good events were applied"
    rows = stored_events(session)
    rejected = [r for r in rows if r.event == "rejected"]
    assert len(rejected) == 1 + len(hostile), [r.payload for r in rejected]
    assert all(r.delivery_id is None and set(r.payload) == {"reason"} for r in rejected)
    assert any("nested too deeply" in r.payload["reason"] for r in rejected)
    assert len(rows) == len(good) + len(rejected)
    # The same batch again changes nothing: good and bad events alike are deduplicated.
    assert post_raw_sendgrid(webhook_client, sendgrid_fake, body).status_code == 204
    assert len(stored_events(session)) == len(rows)


def test_a_batch_nested_too_deeply_to_parse_is_answered_not_crashed_on(
        session: Session, webhook_client: TestClient, sendgrid_fake: Any) -> None:
    assert post_raw_sendgrid(webhook_client, sendgrid_fake, "[" * 100_000 + "]" * 100_000).status_code == 204
    assert [r.event for r in stored_events(session)] == ["rejected"]
    assert post_raw_sendgrid(webhook_client, sendgrid_fake, "{" * 100_000).status_code == 400


def test_provider_text_is_stored_with_contacts_masked(
        session: Session, webhook_client: TestClient, sendgrid_fake: Any, sent_email: Any) -> None:
    record = sendgrid_fake.messages[0]
    processed, bounce = sendgrid_fake.build_events(record, "bounce")
    bounce["reason"] = f"550 5.1.1 <{record.email}>: Recipient address rejected; call +447700900123"
    bounce["note"] = f"for {record.email}"
    assert post_sendgrid(webhook_client, sendgrid_fake, [processed, bounce]).status_code == 204
    email = next(d for d in deliveries(session, sent_email.id, "email")
                 if str(d.id) == record.custom_args["delivery_id"])
    assert email.status == DeliveryStatus.BOUNCED
    stored = json.dumps([r.payload for r in stored_events(session)]) + (email.error or "")
    assert record.email not in stored and "7700900123" not in stored
    assert "Recipient address rejected" in email.error and "***" in email.error


def test_a_signed_twilio_callback_out_of_range_is_kept_as_rejected(
        session: Session, webhook_client: TestClient, twilio_fake: Any, sent_sms: Any) -> None:
    sms = twilio_fake.messages[0]
    for query, extra in ((f"d={'9' * 25}", {}), ("d=-3", {}), ("", {"ErrorCode": "1" * 200}),
                         ("", {"MessageStatus": "deliv\u0000ered"})):
        path = "webhooks/twilio/status" + (f"?{query}" if query else "")
        params = {**twilio_fake.callback_params(sms, "undelivered", 30003), **extra}
        signature = twilio_fake.sign("https://portal.example.org/" + path, params)
        response = webhook_client.post("/" + path, content=urlencode(params),
                                       headers={"Content-Type": "application/x-www-form-urlencoded",
                                                TWILIO_SIGNATURE: signature})
        assert response.status_code == 204, response.text
    assert [r.event for r in stored_events(session)] == ["rejected"] * 4
    d = next(x for x in deliveries(session, sent_sms.id, "sms") if x.provider_message_id == sms.sid)
    assert d.status == DeliveryStatus.SENT, "nothing was applied"


def test_twilios_error_message_is_stored_with_the_number_masked(
        session: Session, webhook_client: TestClient, twilio_fake: Any, sent_sms: Any) -> None:
    sms = twilio_fake.messages[0]
    path = sms.status_callback.split("://", 1)[1].split("/", 1)[1]
    params = {**twilio_fake.callback_params(sms, "undelivered", 30003),
              "ErrorMessage": f"Unreachable destination handset {sms.to}"}
    signature = twilio_fake.sign("https://portal.example.org/" + path, params)
    assert webhook_client.post("/" + path, content=urlencode(params),
                               headers={"Content-Type": "application/x-www-form-urlencoded",
                                        TWILIO_SIGNATURE: signature}).status_code == 204
    payloads = json.dumps([r.payload for r in stored_events(session)])
    assert "Unreachable destination handset" in payloads and sms.to not in payloads and sms.to[-9:] not in payloads


@pytest.fixture
def client_without_a_database(sendgrid_fake: Any, twilio_fake: Any) -> Any:
    """The app with its database unreachable (nothing listens on the port it is configured for)."""
    from sqlalchemy import create_engine

    from app.main import create_app
    from tests.stack import free_port

    settings = Settings(SENDGRID_WEBHOOK_PUBLIC_KEY=sendgrid_fake.webhook_public_key,
                        TWILIO_AUTH_TOKEN=twilio_fake.auth_token, PUBLIC_BASE_URL="https://portal.example.org")
    application = create_app(settings, run_embedded_worker=False)
    engine = create_engine(f"postgresql+psycopg://portal@127.0.0.1:{free_port()}/portal",
                           connect_args={"connect_timeout": 2})
    application.state.session_factory = sessionmaker(engine)
    with TestClient(application) as client:
        yield client
    engine.dispose()


def test_while_the_database_is_down_webhooks_answer_503_with_retry_after(
        client_without_a_database: TestClient, sendgrid_fake: Any, twilio_fake: Any) -> None:
    events = [{"event": "delivered", "sg_event_id": "a1", "delivery_id": "1", "timestamp": int(time.time())}]
    sendgrid = post_sendgrid(client_without_a_database, sendgrid_fake, events)
    params = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}
    signature = twilio_fake.sign("https://portal.example.org/webhooks/twilio/status?d=1", params)
    twilio = client_without_a_database.post("/webhooks/twilio/status?d=1", content=urlencode(params),
                                            headers={"Content-Type": "application/x-www-form-urlencoded",
                                                     TWILIO_SIGNATURE: signature})
    for response in (sendgrid, twilio):
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) > 0
