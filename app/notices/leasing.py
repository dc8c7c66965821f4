"""Leasing: a sender takes the next chunk of a campaign's due deliveries in one short transaction."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import SessionFactory, session_scope, utcnow
from app.incidents import service as incident_service
from app.members import service as member_service
from app.members.service import MemberContact
from app.notices import rendering
from app.notices.models import Campaign, CampaignStatus, Channel, NoticeTemplate
from app.notices.planning import variant_categories
from app.notices.repository import CampaignRepository, DeliveryRepository
from app.notices.transitions import complete_if_done


@dataclass
class Leased:
    """A chunk a worker holds: the rows and what it needs to render them."""

    campaign_id: int
    channel: str
    rows: list[Any]
    contacts: dict[int, MemberContact]
    templates: dict[str, NoticeTemplate]  # language -> template
    shared: dict[str, rendering.SharedValues]  # language -> values
    categories: dict[str, rendering.Category]  # per code, in each language: code -> (name, guidance)
    categories_cy: dict[str, rendering.Category] = field(default_factory=dict)

    def categories_for(self, variant: str, language: str) -> list[rendering.Category]:
        table = self.categories_cy if language == "cy" else self.categories
        return [table[c] for c in variant_categories(variant) if c in table]

    def values(self, row: Any) -> dict[str, str]:
        contact = self.contacts[row.member_id]
        return {"first_name": contact.first_name, "last_name": contact.last_name, "branch": contact.branch_name,
                "reference": row.reference}


def _category_tables(session: Session, incident_id: int) -> tuple[dict[str, rendering.Category],
                                                                  dict[str, rendering.Category]]:
    # The incident's guidance from its one source, as the incident page and the status page show it.
    base_url = get_settings().PUBLIC_BASE_URL
    guidance = {lang: incident_service.guidance_texts(session, incident_id=incident_id, lang=lang, base_url=base_url)
                for lang in ("en", "cy")}
    en, cy = {}, {}
    for c in incident_service.categories_by_code(session).values():
        en[c.code] = rendering.Category(c.code, c.name, guidance["en"][c.code])
        cy[c.code] = rendering.Category(c.code, c.name_cy or c.name, guidance["cy"][c.code])
    return en, cy


@dataclass(frozen=True)
class _Static:
    """What every chunk of a campaign renders with; templates cannot change once a campaign is approved."""

    templates: dict[str, dict[str, NoticeTemplate]]  # channel -> language -> template
    shared: dict[str, rendering.SharedValues]
    categories: tuple[dict[str, rendering.Category], dict[str, rendering.Category]]
    loaded_at: float


_static: dict[tuple[Any, ...], _Static] = {}
_STATIC_SECONDS = 60.0  # incident titles and category guidance may be edited; pick that up within a minute


def _campaign_static(session: Session, campaign: Campaign) -> _Static:
    now = time.monotonic()
    key = (campaign.id, campaign.created_at, campaign.approved_at)
    cached = _static.get(key)
    if cached is not None and now - cached.loaded_at < _STATIC_SECONDS:
        return cached
    templates: dict[str, dict[str, NoticeTemplate]] = {}
    for t in CampaignRepository(session).templates(campaign.id):
        session.expunge(t)
        templates.setdefault(t.channel, {})[t.language] = t
    shared = {lang: rendering.shared_values(session, incident_id=campaign.incident_id, language=lang)
              for lang in ("en", "cy")}
    static = _Static(templates, shared, _category_tables(session, campaign.incident_id), now)
    _static[key] = static
    return static


MIN_SMS_CHUNK = 10


def sms_share() -> float:
    """Messages per second one SMS sender may send: its part of the provider's limit."""
    settings = get_settings()
    return settings.TWILIO_MESSAGES_PER_SECOND / max(1, settings.SMS_SENDERS)


def chunk_size(channel: str) -> int:
    """Deliveries a sender leases at once.

    An SMS chunk is sent one paced message at a time, so its size follows the pacing limit: about
    SEND_CHUNK_SECONDS of one sender's share. A pause then waits a couple of seconds of sending at any
    rate, while an unpaced run amortises each lease over many messages.
    """
    settings = get_settings()
    if channel == Channel.EMAIL:
        return settings.EMAIL_CHUNK
    return max(MIN_SMS_CHUNK, min(settings.SMS_CHUNK, round(sms_share() * settings.SEND_CHUNK_SECONDS)))


def tapered(size: int, due: int, senders: int) -> int:
    """A smaller SMS chunk when little is left, so the last rows are shared by every sender.

    With full chunks the last few senders finish their chunks alone while the rest have stopped;
    sharing out what is left keeps all of them busy to the end. `due` is counted up to a cap, so this
    costs one short index scan a lease.
    """
    if due >= size * senders:
        return size
    return max(MIN_SMS_CHUNK, min(size, -(-due // senders)))


HEARTBEAT_EVERY = timedelta(seconds=1)


def lease_chunk(factory: SessionFactory, campaign_id: int, channel: str) -> Leased | float | None:
    """Lease the next chunk; or say when to look again (seconds), or None when this sender can stop."""
    settings = get_settings()
    with session_scope(factory) as session:
        repo = CampaignRepository(session)
        deliveries = DeliveryRepository(session)
        campaign = repo.get(campaign_id)
        if campaign is None or campaign.status != CampaignStatus.SENDING or repo.sending_stopped():
            return None
        now = utcnow()
        # The campaign row before the delivery rows: the same lock order as pause and cancel. Only when
        # the heartbeat looks stale: an UPDATE that finds the row locked waits for the other sender's
        # lease to commit, even when its WHERE then turns out false.
        if campaign.heartbeat_at is None or campaign.heartbeat_at < now - HEARTBEAT_EVERY:
            repo.touch(campaign_id, now, HEARTBEAT_EVERY)
        size = chunk_size(channel)
        if channel == Channel.SMS:
            size = tapered(size, deliveries.due_at_most(campaign_id, channel, now, size * settings.SMS_SENDERS),
                           settings.SMS_SENDERS)
        rows = deliveries.lease(campaign_id, channel, size, now, now + timedelta(seconds=settings.SEND_LEASE_SECONDS))
        if not rows:
            due, pending, next_at = deliveries.work_left(campaign_id, channel, now)
            if due:
                return 0.2  # other senders hold the due rows for the moment
            if pending == 0:
                if campaign.planned_at is not None:
                    complete_if_done(session, campaign_id)
                    return None
                return 1.0  # planning is still adding rows
            wait = (next_at - now).total_seconds() if next_at else settings.STALL_SECONDS
            return min(max(wait, 0.2), settings.STALL_SECONDS)
        contacts = member_service.contacts(session, [r.member_id for r in rows], open_email=channel == Channel.EMAIL,
                                           open_phone=channel == Channel.SMS)
        static = _campaign_static(session, campaign)
        en, cy = static.categories
        return Leased(campaign_id, channel, rows, contacts, static.templates.get(channel, {}), static.shared, en, cy)
