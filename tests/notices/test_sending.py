"""Sending through the real SDKs against the fake providers: batching, retries, permanent failures,
fallback, pause, the stop switch, leases and completion."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope, utcnow
from app.kit.ratelimit import LocalLimiter
from app.members import service as member_service
from app.notices import leasing, reconciling, recording, senders, sending, service
from app.notices.models import CampaignStatus, Channel, Delivery, DeliveryStatus

from .conftest import APPROVER, deliveries, make_due, statuses

FAST = LocalLimiter(10_000)


def run(factory: sessionmaker[Session], campaign_id: int, channel: str, *, email: Any = None, sms: Any = None,
        limit: int = 50) -> float | None:
    """Run one sender until it says to stop or to wait."""
    delay: float | None = 0.0
    for _ in range(limit):
        delay = sending.send_chunk(factory, campaign_id, channel, email_sender=email, sms_sender=sms, limiter=FAST)
        if delay != 0.0:
            break
    return delay


def test_email_goes_in_batches_by_variant_with_member_values_substituted(
        session: Session, session_factory: Any, sending_campaign: Any, sendgrid_fake: Any, sendgrid_sender: Any,
) -> None:
    campaign = sending_campaign(sms_fallback=False)
    assert run(session_factory, campaign.id, "email", email=sendgrid_sender) is None
    rows = deliveries(session, campaign.id, "email")
    sent = [d for d in rows if d.status == DeliveryStatus.SENT]
    assert len(sendgrid_fake.messages) == len(sent) > 100
    assert campaign.status == CampaignStatus.COMPLETED
    # One request per variant: far fewer requests than members.
    requests = {m.x_message_id for m in sendgrid_fake.messages}
    assert len(requests) == len({d.variant for d in sent})
    by_id = {str(d.id): d for d in sent}
    contacts = member_service.contacts(session, [d.member_id for d in sent])
    for message in sendgrid_fake.messages:
        d = by_id[message.custom_args["delivery_id"]]
        member = contacts[d.member_id]
        assert message.email == member.email
        assert d.reference in message.subject and d.reference in message.text and d.reference in message.html
        greeting = "Annwyl" if d.language == "cy" else "Dear"
        assert f"{greeting} {member.first_name} {member.last_name}" in message.text
        assert d.provider_message_id == message.x_message_id


def test_sms_goes_one_request_each_with_a_status_callback(
        session: Session, session_factory: Any, sending_campaign: Any, twilio_fake: Any, twilio_sender: Any,
) -> None:
    campaign = sending_campaign(channels=(Channel.SMS,))
    assert run(session_factory, campaign.id, "sms", sms=twilio_sender) is None
    sent = [d for d in deliveries(session, campaign.id, "sms") if d.status == DeliveryStatus.SENT]
    assert len(twilio_fake.messages) == len(sent) > 50
    by_sid = {d.provider_message_id: d for d in sent}
    for sms in twilio_fake.messages:
        d = by_sid[sms.sid]
        assert sms.status_callback.endswith(f"/webhooks/twilio/status?d={d.id}")
        assert d.reference in sms.body


def test_throttling_backs_off_honouring_retry_after_and_then_succeeds(
        session: Session, session_factory: Any, sending_campaign: Any, sendgrid_fake: Any, sendgrid_sender: Any,
        monkeypatch: Any,
) -> None:
    from app.config import get_settings

    monkeypatch.setattr(get_settings(), "RETRY_BASE_SECONDS", 0.1)
    campaign = sending_campaign(sms_fallback=False, branches=["kent"])
    sendgrid_fake.throttle_next(1, retry_after=3)
    before = utcnow()
    limiter = LocalLimiter(10_000)
    delay = sending.send_chunk(session_factory, campaign.id, "email", email_sender=sendgrid_sender,
                               sms_sender=None, limiter=limiter)
    rows = [d for d in deliveries(session, campaign.id, "email") if d.status == DeliveryStatus.QUEUED]
    assert rows, "the throttled batch is waiting for its next attempt"
    assert all(d.next_attempt_at >= before + timedelta(seconds=2.9) for d in rows), "Retry-After beats the backoff"
    delay = run(session_factory, campaign.id, "email", email=sendgrid_sender)
    assert all((d.attempts, d.error_code) == (1, "429") for d in rows)
    assert delay is not None and delay > 0, "the sender waits instead of stopping"
    make_due(session, campaign.id)
    assert run(session_factory, campaign.id, "email", email=sendgrid_sender) is None
    assert set(statuses(session, campaign.id, "email")) <= {DeliveryStatus.SENT, DeliveryStatus.FAILED}


def test_server_errors_are_retried_a_bounded_number_of_times(
        session: Session, session_factory: Any, sending_campaign: Any, sendgrid_fake: Any, sendgrid_sender: Any,
        monkeypatch: Any,
) -> None:
    from app.config import get_settings

    monkeypatch.setattr(get_settings(), "SEND_MAX_ATTEMPTS", 3)
    campaign = sending_campaign(branches=["kent"])
    sendgrid_fake.fail_next(100, status=500)
    for _ in range(3):
        run(session_factory, campaign.id, "email", email=sendgrid_sender)
        make_due(session, campaign.id)
    email = [d for d in deliveries(session, campaign.id, "email") if d.error_code == "500"]
    assert email and all(d.status == DeliveryStatus.FAILED and d.attempts == 3 for d in email)
    assert all("gave up after 3 attempts" in (d.error or "") for d in email)
    fallback = {d.fallback_of_id for d in deliveries(session, campaign.id, "sms")}
    with_phone = {d.id for d in email if member_service.contacts(session, [d.member_id])[d.member_id].phone}
    assert with_phone <= fallback, "members with a phone get the SMS version"


def test_a_rejected_request_fails_at_once_with_the_providers_reason_and_falls_back_to_sms(
        session: Session, session_factory: Any, sending_campaign: Any, sendgrid_fake: Any, sendgrid_sender: Any,
) -> None:
    campaign = sending_campaign(branches=["kent"])
    sendgrid_fake.fail_next(100, status=400)
    run(session_factory, campaign.id, "email", email=sendgrid_sender)
    email = [d for d in deliveries(session, campaign.id, "email") if d.error_code == "400"]
    assert email and all(d.status == DeliveryStatus.FAILED and d.attempts == 1 for d in email)
    assert all(d.error for d in email)
    sms = deliveries(session, campaign.id, "sms")
    assert {d.fallback_of_id for d in sms} >= {d.id for d in email
                                               if member_service.contacts(session, [d.member_id])[d.member_id].phone}


def test_invalid_and_unsubscribed_numbers_fail_with_twilio_codes(
        session: Session, session_factory: Any, sending_campaign: Any, twilio_fake: Any, twilio_sender: Any,
) -> None:
    campaign = sending_campaign(channels=(Channel.SMS,), branches=["kent"])
    rows = [d for d in deliveries(session, campaign.id, "sms") if d.status == DeliveryStatus.QUEUED]
    contacts = member_service.contacts(session, [d.member_id for d in rows])
    bad, stopped = contacts[rows[0].member_id].phone, contacts[rows[-1].member_id].phone
    twilio_fake.reject_number(bad)
    twilio_fake.opt_out(stopped)
    run(session_factory, campaign.id, "sms", sms=twilio_sender)
    codes = {}
    for d in deliveries(session, campaign.id, "sms"):
        phone = contacts[d.member_id].phone if d.member_id in contacts else None
        if phone in (bad, stopped):
            codes[phone] = (d.status, d.error_code)
    assert codes[bad] == (DeliveryStatus.FAILED, "21211")
    assert codes[stopped] == (DeliveryStatus.FAILED, "21610")


def test_pause_and_the_stop_switch_take_effect_before_the_next_chunk(
        session: Session, session_factory: Any, sending_campaign: Any, sendgrid_fake: Any, sendgrid_sender: Any,
) -> None:
    campaign = sending_campaign(sms_fallback=False)
    service.pause(session, campaign.id, actor=APPROVER)
    session.commit()
    assert run(session_factory, campaign.id, "email", email=sendgrid_sender) is None
    assert sendgrid_fake.messages == []
    service.resume(session, campaign.id, actor=APPROVER)
    service.set_stop_switch(session, stopped=True, actor=APPROVER)
    session.commit()
    assert run(session_factory, campaign.id, "email", email=sendgrid_sender) is None
    assert sendgrid_fake.messages == []
    service.set_stop_switch(session, stopped=False, actor=APPROVER)
    session.commit()
    assert run(session_factory, campaign.id, "email", email=sendgrid_sender) is None
    assert sendgrid_fake.messages


def test_an_expired_lease_goes_back_to_the_queue_and_is_sent_once_more(
        session: Session, session_factory: Any, sending_campaign: Any, sendgrid_fake: Any, sendgrid_sender: Any,
) -> None:
    campaign = sending_campaign(sms_fallback=False, branches=["kent"])
    leased = leasing.lease_chunk(session_factory, campaign.id, "email")  # a worker that then dies
    assert isinstance(leased, leasing.Leased)
    ids = [r.id for r in leased.rows]
    session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(lease_until=utcnow() - timedelta(seconds=1)))
    session.commit()
    result = reconciling.reconcile(session)
    session.commit()
    assert result.leases_requeued == len(ids)
    assert run(session_factory, campaign.id, "email", email=sendgrid_sender) is None
    sent = {d.id: d for d in deliveries(session, campaign.id, "email")}
    assert all(sent[i].status == DeliveryStatus.SENT and sent[i].attempts == 2 for i in ids)


def test_the_reconciler_completes_a_campaign_whose_deliveries_are_all_final(
        session: Session, sending_campaign: Any) -> None:
    campaign = sending_campaign(sms_fallback=False)
    assert reconciling.reconcile(session).completed == []
    session.execute(update(Delivery).where(Delivery.campaign_id == campaign.id,
                                           Delivery.status == DeliveryStatus.QUEUED)
                    .values(status=DeliveryStatus.DELIVERED))
    assert reconciling.reconcile(session).completed == [campaign.id]
    assert campaign.status == CampaignStatus.COMPLETED


@pytest.mark.parametrize(("rate", "senders", "most", "expected"), [
    (30, 8, 250, 10),         # the default pacing: a sender's share is under 4/s, so the floor of ten
    (400, 4, 250, 200),       # two seconds of 100/s
    (100_000, 8, 250, 250),   # unpaced: as many as allowed, so each lease serves many messages
    (400, 4, 100, 100),
])
def test_an_sms_chunk_is_about_two_seconds_of_a_senders_share(
    monkeypatch: pytest.MonkeyPatch, rate: float, senders: int, most: int, expected: int
) -> None:
    from app.config import get_settings

    monkeypatch.setenv("PORTAL_TWILIO_MESSAGES_PER_SECOND", str(rate))
    monkeypatch.setenv("PORTAL_SMS_SENDERS", str(senders))
    monkeypatch.setenv("PORTAL_SMS_CHUNK", str(most))
    get_settings.cache_clear()
    try:
        assert leasing.chunk_size(Channel.SMS) == expected
        assert leasing.chunk_size(Channel.EMAIL) == get_settings().EMAIL_CHUNK
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


@pytest.mark.parametrize(("size", "due", "senders", "expected"), [
    (250, 5000, 8, 250),   # plenty left: full chunks
    (250, 2000, 8, 250),
    (250, 1000, 8, 125),   # the last thousand shared by all eight senders
    (250, 30, 8, 10),      # never below the floor of ten
    (250, 0, 8, 10),
])
def test_the_last_sms_rows_are_shared_out_among_the_senders(size: int, due: int, senders: int,
                                                            expected: int) -> None:
    assert leasing.tapered(size, due, senders) == expected


def test_an_sms_lease_near_the_end_leaves_rows_for_the_other_senders(
        session: Session, session_factory: Any, sending_campaign: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import get_settings

    campaign = sending_campaign(channels=(Channel.SMS,))
    due = sum(1 for d in deliveries(session, campaign.id, "sms") if d.status == DeliveryStatus.QUEUED)
    monkeypatch.setenv("PORTAL_SMS_SENDERS", "4")
    monkeypatch.setenv("PORTAL_TWILIO_MESSAGES_PER_SECOND", "100000")
    get_settings.cache_clear()
    try:
        assert due < leasing.chunk_size(Channel.SMS) * 4
        leased = leasing.lease_chunk(session_factory, campaign.id, "sms")
        assert isinstance(leased, leasing.Leased)
        assert len(leased.rows) == max(leasing.MIN_SMS_CHUNK, -(-due // 4)) < due
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_a_retry_recorded_again_after_its_commit_answer_was_lost_leaves_the_next_lease_alone(
        session: Session, session_factory: Any, sending_campaign: Any, twilio_fake: Any, twilio_sender: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A short database blip can drop the answer to a record's COMMIT: the sender cannot tell it committed and
    records the same results again once the database is back. By then the retried SMS may be leased (and on
    its way) to another sender; the repeated record must not put it back in the queue for a third."""
    from app.config import get_settings

    monkeypatch.setenv("PORTAL_TWILIO_MESSAGES_PER_SECOND", "100000")  # one chunk takes the whole branch
    get_settings.cache_clear()
    try:
        campaign = sending_campaign(channels=(Channel.SMS,), branches=["kent"])
        twilio_fake.fail_next(1, status=503)  # the provider turns the first SMS away for now
        chunk = leasing.lease_chunk(session_factory, campaign.id, "sms")  # sender A
        assert isinstance(chunk, leasing.Leased)
        record = sending.Recorder(session_factory, campaign.id, "sms", {r.id: r for r in chunk.rows})
        outcome = senders.send_sms_chunk(chunk, twilio_sender, FAST, record)
        assert record.finish() and len(outcome.retry) == 1
        [([retried], _)] = outcome.retry
        make_due(session, campaign.id)
        again = leasing.lease_chunk(session_factory, campaign.id, "sms")  # sender B takes the retry
        assert isinstance(again, leasing.Leased) and [r.id for r in again.rows] == [retried]
        # A's record of the retry committed, but its answer was lost in the blip: A records it once more.
        with session_scope(session_factory) as s:
            recording.record_outcome(s, campaign.id, record.rows, senders.Outcome(retry=outcome.retry))
        make_due(session, campaign.id)
        run(session_factory, campaign.id, "sms", sms=twilio_sender)  # sender C
        senders.send_sms_chunk(again, twilio_sender, FAST,
                               sending.Recorder(session_factory, campaign.id, "sms", {r.id: r for r in again.rows}))
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    callbacks = [m.status_callback for m in twilio_fake.messages]
    assert sum(1 for c in callbacks if c.endswith(f"?d={retried}")) == 1, "the member gets the SMS once"
    assert len(callbacks) == len(set(callbacks)) == len(chunk.rows)
