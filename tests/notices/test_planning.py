"""Planning: one delivery per member and channel, filtered, idempotent, each with its own reference."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.members.models import Member
from app.members.pii import email_index
from app.notices import evidence, planning, service
from app.notices.models import Campaign, Channel, Delivery, DeliveryStatus, Skipped, SkipReason, Suppression

from .conftest import deliveries


def members(session: Session) -> list[Member]:
    return list(session.execute(select(Member).order_by(Member.id)).scalars())


def skips(session: Session, campaign_id: int, channel: str | None = None) -> list[Skipped]:
    stmt = select(Skipped).where(Skipped.campaign_id == campaign_id).order_by(Skipped.id)
    if channel:
        stmt = stmt.where(Skipped.channel == channel)
    return list(session.execute(stmt).scalars())


def test_every_member_gets_one_delivery_per_channel_with_a_usable_address_and_a_unique_reference(
        session: Session, sending_campaign: Any) -> None:
    campaign = sending_campaign(channels=(Channel.EMAIL, Channel.SMS))
    rows = deliveries(session, campaign.id)
    everyone = members(session)
    without_phone = [m for m in everyone if m.phone_enc is None]
    assert without_phone, "the demo has members without a phone"
    assert len(rows) + len(skips(session, campaign.id)) == 2 * len(everyone)
    assert len({(d.member_id, d.channel) for d in rows}) == len(rows)
    assert len({d.reference for d in rows}) == len(rows)
    assert all(len(d.reference) == 14 and d.reference.count("-") == 2 for d in rows)
    assert campaign.planned_at is not None


def test_a_member_with_no_address_on_a_channel_gets_no_delivery_there_but_a_skip_and_the_sms_at_once(
        session: Session, sending_campaign: Any) -> None:
    campaign = sending_campaign(channels=(Channel.EMAIL,))
    by_member = {m.id: m for m in members(session)}
    no_email = {m.id for m in by_member.values() if m.email_enc is None}
    assert no_email, "the demo has members without email"
    email = deliveries(session, campaign.id, "email")
    assert {d.member_id for d in email}.isdisjoint(no_email), "no delivery row for a missing address"
    assert all(d.status == DeliveryStatus.QUEUED and d.error_code is None for d in email)
    skipped = skips(session, campaign.id, "email")
    assert {(k.member_id, k.reason) for k in skipped} == {(m, SkipReason.NO_ADDRESS) for m in no_email}
    sms = deliveries(session, campaign.id, "sms")
    assert {d.member_id for d in sms} == {m for m in no_email if by_member[m].phone_enc}
    assert all(d.status == DeliveryStatus.QUEUED and d.fallback_of_id is None for d in sms)


def test_a_member_with_no_address_at_all_is_counted_apart_and_listed_as_not_reached(
        session: Session, demo: Any, sending_campaign: Any) -> None:
    nobody = members(session)[0]
    session.execute(update(Member).where(Member.id == nobody.id).values(
        email_enc=None, email_index=None, phone_enc=None, phone_index=None))
    session.commit()
    campaign = sending_campaign(channels=(Channel.EMAIL,))
    report = service.status_report(session, campaign.id).as_dict()
    no_email = sum(1 for m in members(session) if m.email_enc is None)
    no_sms = sum(1 for m in members(session) if m.email_enc is None and m.phone_enc is None)
    assert report["no_address"] == {"email": no_email, "sms": no_sms}
    assert report["counts"]["email"]["failed"] == 0, "a missing address is not a provider failure"
    assert report["total"] == len(deliveries(session, campaign.id))
    listed = {u.member_id: u.why for u in evidence.unreached(session, campaign.id)}
    assert listed == {nobody.id: "email: no email address on file; sms: no number that can take SMS on file"}
    by_branch = evidence.skipped_by_branch(session, campaign.id)
    assert sum(r["count"] for r in by_branch if r["reason"] == "no_address" and r["channel"] == "email") == no_email
    assert sum(r["count"] for r in evidence.counts_by_branch(session, campaign.id)) == report["total"]


def test_the_evidence_export_lists_each_member_planned_nothing_on_a_channel_apart_from_the_deliveries(
        session: Session, demo: Any, sending_campaign: Any) -> None:
    nobody = members(session)[0]
    session.execute(update(Member).where(Member.id == nobody.id).values(
        email_enc=None, email_index=None, phone_enc=None, phone_index=None))
    session.commit()
    campaign = sending_campaign(channels=(Channel.EMAIL,))
    out = io.StringIO()
    written = evidence.write_deliveries_csv(session, campaign.id, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert written == len(rows) == len(deliveries(session, campaign.id)) + len(skips(session, campaign.id))
    skipped = [r for r in rows if r["status"] == "skipped"]
    assert len(skipped) == len(skips(session, campaign.id))
    assert all(r["delivery_id"] == "" and r["error_code"] == "no_address" for r in skipped)
    theirs = sorted((r["channel"], r["error"]) for r in skipped if r["membership_number"] == nobody.membership_number)
    assert theirs == [("email", "email: no email address on file"),
                      ("sms", "sms: no number that can take SMS on file")]
    assert all(r["status"] != "failed" for r in rows), "a missing address is not a failed delivery"
def test_planning_twice_adds_nothing(session: Session, session_factory: sessionmaker[Session],
                                     sending_campaign: Any) -> None:
    campaign = sending_campaign()
    before = [(d.id, d.reference) for d in deliveries(session, campaign.id)]
    assert before
    campaign.planned_at = None
    session.commit()
    assert planning.plan_campaign(session_factory, campaign.id)
    assert [(d.id, d.reference) for d in deliveries(session, campaign.id)] == before


def test_planning_runs_in_chunks(session: Session, session_factory: sessionmaker[Session], sending_campaign: Any,
                                 monkeypatch: Any) -> None:
    from app.config import get_settings

    monkeypatch.setattr(get_settings(), "PLAN_CHUNK", 7)
    campaign = sending_campaign()
    planned = len(deliveries(session, campaign.id, "email")) + len(skips(session, campaign.id, "email"))
    assert planned == len(members(session))


def test_audience_filters_by_branch_language_and_category(session: Session, sending_campaign: Any) -> None:
    everyone = members(session)
    cy = sending_campaign(language="cy")
    welsh = {m.id for m in everyone if m.preferred_language == "cy"}
    assert welsh
    assert {d.member_id for d in deliveries(session, cy.id)} == welsh
    assert all(d.language == "cy" for d in deliveries(session, cy.id))
    met = sending_campaign(branches=["metropolitan"])
    metropolitan = {m.id for m in everyone if m.branch_id == deliveries(session, met.id)[0].branch_id}
    assert {d.member_id for d in deliveries(session, met.id, "email")} == metropolitan
    cards = sending_campaign(categories=["card_details"])
    carded = deliveries(session, cards.id, "email")
    assert 0 < len(carded) < len(everyone)
    assert all("card_details" in d.variant for d in carded)


def test_not_yet_reached_leaves_out_members_an_earlier_notice_reached(session: Session, sending_campaign: Any) -> None:
    first = sending_campaign()
    reached = deliveries(session, first.id)[:10]
    for d in reached:
        d.status = DeliveryStatus.DELIVERED
    session.commit()
    second = sending_campaign(not_reached=True)
    planned = {d.member_id for d in deliveries(session, second.id, "email")}
    planned |= {k.member_id for k in skips(session, second.id, "email")}
    assert planned.isdisjoint({d.member_id for d in reached})
    assert len(planned) == len(members(session)) - 10


def test_suppressed_contacts_are_not_messaged_nor_counted_as_failures(session: Session, sending_campaign: Any
                                                                       ) -> None:
    from app.members.pii import open_email

    victim = next(m for m in members(session) if m.email_enc and m.phone_enc)
    session.add(Suppression(channel="email", contact_index=email_index(open_email(victim.email_enc)),
                            reason="spam report", source="test"))
    session.commit()
    campaign: Campaign = sending_campaign()
    assert victim.id not in {d.member_id for d in deliveries(session, campaign.id, "email")}
    assert [(k.member_id, k.reason) for k in skips(session, campaign.id, "email")
            if k.reason == SkipReason.SUPPRESSED] == [(victim.id, SkipReason.SUPPRESSED)]
    sms = [d for d in deliveries(session, campaign.id, "sms") if d.member_id == victim.id]
    assert len(sms) == 1, "the SMS version goes instead"
    report = service.status_report(session, campaign.id).as_dict()
    assert report["suppressed"]["email"] == 1 and report["counts"]["email"]["failed"] == 0


def test_no_delivery_objects_are_built_per_member(session: Session, sending_campaign: Any) -> None:
    # Planning inserts plain rows; the ORM never holds one Delivery per member.
    campaign = sending_campaign()
    assert not any(isinstance(obj, Delivery) for obj in session.identity_map.values())
    assert deliveries(session, campaign.id)


def test_a_number_that_cannot_take_sms_gets_no_sms_but_a_skip(session: Session, demo: Any,
                                                              sending_campaign: Any) -> None:
    landline = next(m for m in members(session) if m.phone_enc)
    session.execute(update(Member).where(Member.id == landline.id).values(phone_sms=False))
    session.commit()
    campaign = sending_campaign(channels=(Channel.SMS,))
    assert landline.id not in {d.member_id for d in deliveries(session, campaign.id, "sms")}
    assert (landline.id, SkipReason.NO_ADDRESS) in {(k.member_id, k.reason) for k in skips(session, campaign.id)}
    listed = {u.member_id: u.why for u in evidence.unreached(session, campaign.id)}
    assert listed[landline.id] == "sms: no number that can take SMS on file"
