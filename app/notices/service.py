"""Notice campaigns: writing, four-eyes approval, starting, pausing, cancelling, the stop switch, evidence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.auth import service as auth_service
from app.auth.models import Role, StaffUser
from app.branches import service as branch_service
from app.db import read_only, utcnow
from app.errors import AppError, Conflict, Forbidden, NotFound
from app.incidents import service as incident_service
from app.notices import jobs, rendering
from app.notices.models import (
    PENDING,
    Campaign,
    CampaignStatus,
    Channel,
    DeliveryStatus,
    NoticeTemplate,
    SkipReason,
)
from app.notices.repository import CampaignRepository, DeliveryRepository
from app.notices.transitions import transition

LANGUAGES = ("en", "cy")


@dataclass(frozen=True)
class TemplateSource:
    channel: Channel
    language: str
    text: str
    subject: str = ""
    html: str = ""


@dataclass(frozen=True)
class Audience:
    categories: list[str] = field(default_factory=list)
    branches: list[str] = field(default_factory=list)
    language: str | None = None
    not_reached: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"categories": self.categories, "branches": self.branches, "language": self.language,
                "not_reached": self.not_reached}


def load_template_dir(directory: Path) -> list[TemplateSource]:
    """Read `email.<lang>.subject|html|txt` and `sms.<lang>.txt` from a directory."""
    if not directory.is_dir():
        raise AppError(f"template directory {directory} does not exist")
    found: list[TemplateSource] = []
    for lang in LANGUAGES:
        parts = {ext: directory / f"email.{lang}.{ext}" for ext in ("subject", "html", "txt")}
        present = [p.exists() for p in parts.values()]
        if all(present):
            found.append(TemplateSource(Channel.EMAIL, lang, subject=parts["subject"].read_text("utf-8"),
                                        html=parts["html"].read_text("utf-8"), text=parts["txt"].read_text("utf-8")))
        elif any(present):
            raise AppError(f"email.{lang} needs all of .subject, .html and .txt in {directory}")
        sms = directory / f"sms.{lang}.txt"
        if sms.exists():
            found.append(TemplateSource(Channel.SMS, lang, text=sms.read_text("utf-8")))
    return found


def _staff(session: Session, email: str, *, role: Role = Role.ADMIN) -> StaffUser:
    user = auth_service.active_staff(session, email)
    if user is None:
        raise Forbidden(f"{email} is not an active staff account")
    if user.role != role.value:
        raise Forbidden(f"{email} is not an {role.value}")
    return user


def get_campaign(session: Session, campaign_id: int, *, fresh: bool = False) -> Campaign:
    """The campaign; `fresh` reads it again from the database even if this session has it already."""
    campaign = session.get(Campaign, campaign_id, populate_existing=fresh)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    return campaign


def create_campaign(
    session: Session, *, name: str, incident_code: str, channels: Sequence[Channel], audience: Audience,
    templates: Sequence[TemplateSource], author_email: str, sms_fallback: bool = True,
) -> Campaign:
    """Write a draft campaign; its templates are checked by rendering them with sample values."""
    author = _staff(session, author_email)
    incident = incident_service.incidents_by_code(session).get(incident_code)
    if incident is None:
        raise NotFound(f"no incident {incident_code!r}")
    channels = sorted({Channel(c) for c in channels})
    if not channels:
        raise AppError("choose at least one channel (email, sms)")
    categories = incident_service.categories_by_code(session)
    unknown = [c for c in audience.categories if c not in categories]
    if unknown:
        raise AppError(f"unknown data categories: {', '.join(unknown)}")
    branches = branch_service.branches_by_code(session)
    unknown = [b for b in audience.branches if b not in branches]
    if unknown:
        raise AppError(f"unknown branches: {', '.join(unknown)}")
    if audience.language not in (None, *LANGUAGES):
        raise AppError(f"language must be one of {', '.join(LANGUAGES)}")
    by_key = {(t.channel, t.language): t for t in templates}
    needed = set(channels) | ({Channel.SMS} if sms_fallback and Channel.SMS not in channels else set())
    for channel in needed:
        if (channel, "en") not in by_key:
            hint = " (SMS fallback needs one, or turn fallback off)" if channel not in channels else ""
            raise rendering.TemplateProblem(f"an English {channel.value} template is required{hint}")
    campaign = CampaignRepository(session).add(
        Campaign(name=name.strip()[:200] or incident_code, incident_id=incident.id,
                 channels=",".join(c.value for c in channels), audience=audience.as_dict(),
                 sms_fallback=sms_fallback and Channel.SMS not in channels, status=CampaignStatus.DRAFT,
                 created_by_id=author.id),
        flush=True)
    sample = [rendering.Category(c.code, c.name, c.guidance) for c in list(categories.values())[:3]]
    for t in templates:
        if t.channel not in needed:
            continue
        if t.language not in LANGUAGES:
            raise AppError(f"unknown template language {t.language!r}")
        shared = rendering.shared_values(session, incident_id=campaign.incident_id, language=t.language)
        rendering.check_template(t.channel, t.subject, t.html, t.text, shared, sample)
        session.add(NoticeTemplate(campaign_id=campaign.id, channel=t.channel.value, language=t.language,
                                   subject=t.subject, html=t.html, text=t.text))
    session.flush()
    audit_service.record(session, actor=author.email, action="campaign.create", subject=f"campaign:{campaign.id}",
                         channels=campaign.channels, audience=campaign.audience)
    return campaign


def approve(session: Session, campaign_id: int, *, approver_email: str) -> Campaign:
    """Four eyes: a different admin from the author approves a draft."""
    campaign = get_campaign(session, campaign_id, fresh=True)
    approver = _staff(session, approver_email)
    if campaign.status != CampaignStatus.DRAFT:
        raise Conflict(f"campaign {campaign_id} is {campaign.status}, only a draft can be approved")
    if approver.id == campaign.created_by_id:
        raise Forbidden("a campaign must be approved by a different admin from its author")
    campaign = transition(session, campaign_id, expected=CampaignStatus.DRAFT, to=CampaignStatus.APPROVED,
                          approved_by_id=approver.id, approved_at=utcnow())
    audit_service.record(session, actor=approver.email, action="campaign.approve", subject=f"campaign:{campaign.id}")
    return campaign


def send(session: Session, campaign_id: int, *, actor: str, at: datetime | None = None) -> Campaign:
    """Start an approved campaign now, or schedule it for `at`."""
    campaign = get_campaign(session, campaign_id, fresh=True)
    current = CampaignStatus(campaign.status)
    if current not in (CampaignStatus.APPROVED, CampaignStatus.SCHEDULED):
        raise Conflict(f"campaign {campaign_id} is {current}; only an approved campaign can be sent")
    now = utcnow()
    if at is not None and at > now:
        campaign = transition(session, campaign_id, expected=current, to=CampaignStatus.SCHEDULED, scheduled_at=at)
        audit_service.record(session, actor=actor, action="campaign.schedule", subject=f"campaign:{campaign.id}",
                             at=at.isoformat())
        return campaign
    # No heartbeat yet: if the planning job is lost (or was queued by a CLI with no broker), the
    # reconciler starts planning at its next tick.
    campaign = transition(session, campaign_id, expected=current, to=CampaignStatus.SENDING,
                          started_at=campaign.started_at or now, heartbeat_at=None)
    audit_service.record(session, actor=actor, action="campaign.send", subject=f"campaign:{campaign.id}")
    jobs.enqueue_planning(session, campaign.id)
    return campaign


def pause(session: Session, campaign_id: int, *, actor: str) -> Campaign:
    """Stop leasing new chunks; a chunk already at the provider finishes and is recorded."""
    campaign = get_campaign(session, campaign_id, fresh=True)
    current = CampaignStatus(campaign.status)
    if current not in (CampaignStatus.SENDING, CampaignStatus.SCHEDULED):
        raise Conflict(f"campaign {campaign_id} is {current}; only a sending or scheduled campaign can be paused")
    campaign = transition(session, campaign_id, expected=current, to=CampaignStatus.PAUSED)
    audit_service.record(session, actor=actor, action="campaign.pause", subject=f"campaign:{campaign.id}")
    return campaign


def resume(session: Session, campaign_id: int, *, actor: str) -> Campaign:
    """Carry on a paused campaign: sending again, or waiting for its scheduled time if that is still ahead."""
    campaign = get_campaign(session, campaign_id, fresh=True)
    if campaign.status != CampaignStatus.PAUSED:
        raise Conflict(f"campaign {campaign_id} is {campaign.status}; only a paused campaign can be resumed")
    now = utcnow()
    if campaign.scheduled_at is not None and campaign.scheduled_at > now:
        campaign = transition(session, campaign_id, expected=CampaignStatus.PAUSED, to=CampaignStatus.SCHEDULED)
        audit_service.record(session, actor=actor, action="campaign.resume", subject=f"campaign:{campaign.id}",
                             scheduled_at=campaign.scheduled_at.isoformat())
        return campaign
    campaign = transition(session, campaign_id, expected=CampaignStatus.PAUSED, to=CampaignStatus.SENDING,
                          started_at=campaign.started_at or now, heartbeat_at=now)
    audit_service.record(session, actor=actor, action="campaign.resume", subject=f"campaign:{campaign.id}")
    jobs.enqueue_planning(session, campaign.id)
    return campaign


def cancel(session: Session, campaign_id: int, *, actor: str) -> tuple[Campaign, int]:
    """Cancel a campaign: nothing more is sent; deliveries still queued become cancelled."""
    campaign = get_campaign(session, campaign_id, fresh=True)
    current = CampaignStatus(campaign.status)
    if current in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
        raise Conflict(f"campaign {campaign_id} is already {current}")
    now = utcnow()
    # The campaign row first (the guarded update locks it), then its deliveries: the order leasing keeps.
    campaign = transition(session, campaign_id, expected=current, to=CampaignStatus.CANCELLED, cancelled_at=now)
    cancelled = DeliveryRepository(session).cancel_queued(campaign.id, now)
    audit_service.record(session, actor=actor, action="campaign.cancel", subject=f"campaign:{campaign.id}",
                         deliveries_cancelled=cancelled)
    return campaign, cancelled


def set_stop_switch(session: Session, *, stopped: bool, actor: str) -> None:
    """The global switch: while stopped no worker leases anything, for any campaign."""
    switch = CampaignRepository(session).switch()
    switch.stopped = stopped
    switch.changed_by = actor
    switch.changed_at = utcnow()
    audit_service.record(session, actor=actor, action="sending.stop_all" if stopped else "sending.resume_all")
    if not stopped:
        for campaign in CampaignRepository(session).with_status(CampaignStatus.SENDING):
            jobs.enqueue_planning(session, campaign.id)


def sending_stopped(session: Session) -> bool:
    return CampaignRepository(session).sending_stopped()


# --- progress and evidence ----------------------------------------------------------------------
@dataclass(frozen=True)
class CampaignStatusReport:
    campaign: Campaign
    counts: dict[str, dict[str, int]]  # channel -> status -> count (deliveries: tried, or to be tried)
    stopped: bool
    # channel -> reason -> members planned no delivery there: "no_address" (nothing usable on file) or
    # "suppressed". Apart from the counts above: nothing was sent, so they are not provider failures.
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(sum(by.values()) for by in self.counts.values())

    @property
    def pending(self) -> int:
        return sum(by.get(s, 0) for by in self.counts.values() for s in PENDING)

    @property
    def sms_fallback(self) -> bool:
        """Whether members whose email cannot reach them get the SMS: the option, or SMS as a channel too."""
        c = self.campaign
        return bool(c.sms_fallback) or {Channel.EMAIL, Channel.SMS} <= set(c.channel_list)

    def as_dict(self) -> dict[str, Any]:
        c = self.campaign
        no_address = {ch.value: self.skipped.get(ch.value, {}).get(SkipReason.NO_ADDRESS, 0)
                      for ch in _reported_channels(c)}
        suppressed = {ch.value: self.skipped.get(ch.value, {}).get(SkipReason.SUPPRESSED, 0)
                      for ch in _reported_channels(c)}
        return {
            "id": c.id, "name": c.name, "status": c.status, "channels": c.channel_list,
            "sms_fallback": self.sms_fallback, "audience": c.audience, "stop_switch": self.stopped,
            "created_at": c.created_at.isoformat(), "approved_at": c.approved_at and c.approved_at.isoformat(),
            "scheduled_at": c.scheduled_at and c.scheduled_at.isoformat(),
            "started_at": c.started_at and c.started_at.isoformat(),
            "planned_at": c.planned_at and c.planned_at.isoformat(),
            "completed_at": c.completed_at and c.completed_at.isoformat(),
            "cancelled_at": c.cancelled_at and c.cancelled_at.isoformat(),
            "counts": self.counts, "total": self.total, "pending": self.pending,
            "no_address": no_address, "suppressed": suppressed,
        }


def _reported_channels(campaign: Campaign) -> list[Channel]:
    """The campaign's channels, and SMS too when it falls back to SMS."""
    channels = campaign.channel_list
    return channels + ([Channel.SMS] if campaign.sms_fallback and Channel.SMS not in channels else [])


def status_report(session: Session, campaign_id: int) -> CampaignStatusReport:
    """Counts by channel and status now, and the members planned no delivery, by channel and reason."""
    read_only(session)  # on SQLite, answer during a send instead of queueing behind the senders' writes
    campaign = get_campaign(session, campaign_id, fresh=True)
    repo = DeliveryRepository(session)
    counts: dict[str, dict[str, int]] = {}
    for channel, status, n in repo.counts(campaign.id):
        counts.setdefault(channel, {s.value: 0 for s in DeliveryStatus})[status] = n
    skipped: dict[str, dict[str, int]] = {}
    for channel, reason, n in repo.skip_counts(campaign.id):
        skipped.setdefault(channel, {r.value: 0 for r in SkipReason})[reason] = n
    return CampaignStatusReport(campaign, counts, sending_stopped(session), skipped)


@dataclass(frozen=True)
class MemberNotice:
    sent_at: datetime | None  # when the provider took it; None while it is still being sent
    channel: str
    reference: str
    status: str


def notices_for_member(session: Session, *, member_id: int, limit: int = 50) -> list[MemberNotice]:
    """The notices sent (or being sent) to one member, newest first, for their status page."""
    return [MemberNotice(r.sent_at, r.channel, r.reference, r.status)
            for r in DeliveryRepository(session).for_member(member_id, limit)]


@dataclass(frozen=True)
class SentNotice:
    sent_at: datetime
    channel: str


def sent_notice(session: Session, *, reference: str) -> SentNotice | None:
    """When and by which channel the notice with this reference code went out, if one did ("verify a message").

    The code is read forgivingly (case, spaces, hyphens, O/I/L for 0/1); a notice never handed to a
    provider was never seen by anyone, so it does not count.
    """
    from app.kit.references import normalise_reference

    row = DeliveryRepository(session).by_reference(normalise_reference(reference))
    if row is None or row.sent_at is None:
        return None
    return SentNotice(sent_at=row.sent_at, channel=row.channel)
