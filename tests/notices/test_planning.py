"""Planning: one delivery per member and channel, filtered, idempotent, each with its own reference."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.members.models import Member
from app.members.pii import email_index
from app.notices import planning
from app.notices.models import Campaign, Channel, Delivery, DeliveryStatus, Suppression

from .conftest import deliveries


def members(session: Session) -> list[Member]:
    return list(session.execute(select(Member).order_by(Member.id)).scalars())


def test_every_member_gets_one_delivery_per_channel_with_a_unique_reference(
        session: Session, sending_campaign: Any) -> None:
    campaign = sending_campaign(channels=(Channel.EMAIL, Channel.SMS))
    rows = deliveries(session, campaign.id)
    everyone = members(session)
    assert len(rows) == 2 * len(everyone)
    assert len({(d.member_id, d.channel) for d in rows}) == len(rows)
    assert len({d.reference for d in rows}) == len(rows)
    assert all(len(d.reference) == 14 and d.reference.count("-") == 2 for d in rows)
    assert campaign.planned_at is not None


def test_members_without_the_contact_fail_as_no_contact_and_fall_back_to_sms(
        session: Session, sending_campaign: Any) -> None:
    campaign = sending_campaign(channels=(Channel.EMAIL,))
    by_member = {m.id: m for m in members(session)}
    email = deliveries(session, campaign.id, "email")
    no_email = [d for d in email if by_member[d.member_id].email_enc is None]
    assert no_email, "the demo has members without email"
    assert {(d.status, d.error_code) for d in no_email} == {(DeliveryStatus.FAILED, "no_contact")}
    sms = deliveries(session, campaign.id, "sms")
    assert {d.fallback_of_id for d in sms} == {d.id for d in no_email if by_member[d.member_id].phone_enc}
    assert all(d.status == DeliveryStatus.QUEUED for d in sms)


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
    assert len(deliveries(session, campaign.id, "email")) == len(members(session))


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
    assert planned.isdisjoint({d.member_id for d in reached})
    assert len(planned) == len(members(session)) - 10


def test_suppressed_contacts_are_not_messaged(session: Session, sending_campaign: Any) -> None:
    from app.members.pii import open_email

    victim = next(m for m in members(session) if m.email_enc)
    session.add(Suppression(channel="email", contact_index=email_index(open_email(victim.email_enc)),
                            reason="spam report", source="test"))
    session.commit()
    campaign: Campaign = sending_campaign()
    row = next(d for d in deliveries(session, campaign.id, "email") if d.member_id == victim.id)
    assert (row.status, row.error_code) == (DeliveryStatus.FAILED, "suppressed")


def test_reference_codes_are_normalised_from_what_people_type() -> None:
    code = planning.new_reference()
    assert planning.normalise_reference(code.lower().replace("-", " ")) == code
    assert planning.normalise_reference("abcd efgh jk1o") == "ABCD-EFGH-JK10"


def test_no_delivery_objects_are_built_per_member(session: Session, sending_campaign: Any) -> None:
    # Planning inserts plain rows; the ORM never holds one Delivery per member.
    campaign = sending_campaign()
    assert not any(isinstance(obj, Delivery) for obj in session.identity_map.values())
    assert deliveries(session, campaign.id)
