"""Planning: a campaign's audience becomes one delivery row per member and channel, in bulk and in chunks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.branches import service as branch_service
from app.config import get_settings
from app.db import SessionFactory, session_scope, utcnow
from app.incidents import service as incident_service
from app.kit.references import new_references
from app.members import service as member_service
from app.notices import jobs
from app.notices.models import Campaign, CampaignStatus, Channel, DeliveryStatus, SkipReason
from app.notices.repository import CampaignRepository, DeliveryRepository
from app.notices.transitions import lock_status, reopen_for_fallback

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanContext:
    campaign_id: int
    incident_id: int
    channels: list[Channel]
    category_ids: list[int]
    branch_ids: list[int]
    language: str | None
    not_reached: bool
    sms_fallback: bool
    template_languages: dict[str, set[str]]
    category_codes: dict[int, str]
    _variants: dict[tuple[str, tuple[int, ...]], str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, session: Session, campaign: Campaign) -> PlanContext:
        categories = incident_service.categories_by_code(session)
        branches = branch_service.branches_by_code(session)
        languages: dict[str, set[str]] = {}
        for t in CampaignRepository(session).templates(campaign.id):
            languages.setdefault(t.channel, set()).add(t.language)
        audience = campaign.audience or {}
        return cls(
            campaign_id=campaign.id, incident_id=campaign.incident_id, channels=campaign.channel_list,
            category_ids=[categories[c].id for c in audience.get("categories") or []],
            branch_ids=[branches[b].id for b in audience.get("branches") or []],
            language=audience.get("language"), not_reached=bool(audience.get("not_reached")),
            sms_fallback=campaign.sms_fallback, template_languages=languages,
            category_codes={c.id: c.code for c in categories.values()})

    def language_for(self, channel: str, preferred: str) -> str:
        return preferred if preferred in self.template_languages.get(channel, ()) else "en"

    def variant(self, language: str, category_ids: Sequence[int]) -> str:
        key = (language, tuple(category_ids))
        found = self._variants.get(key)
        if found is None:
            found = f"{language}:" + ".".join(sorted(self.category_codes[c] for c in category_ids))[:190]
            self._variants[key] = found
        return found


def variant_categories(variant: str) -> list[str]:
    """The category codes a variant was planned with."""
    codes = variant.partition(":")[2]
    return [c for c in codes.split(".") if c]


def _row(ctx: PlanContext, *, member_id: int, branch_id: int, channel: str, language: str, variant: str,
         now: datetime, fallback_of: int | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "campaign_id": ctx.campaign_id, "member_id": member_id, "branch_id": branch_id, "channel": channel,
        "language": language, "variant": variant, "reference": "", "status": DeliveryStatus.QUEUED,
        "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now, "fallback_of_id": fallback_of,
        "failed_at": None, "error_code": None, "error": None,
    }
    return row


def _insert(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert new deliveries; a (vanishingly rare) reference collision is retried with fresh codes."""
    repo = DeliveryRepository(session)
    for attempt in range(3):
        for row, reference in zip(rows, new_references(len(rows)), strict=True):
            row["reference"] = reference
        try:
            with session.begin_nested():
                return repo.insert_new(rows)
        except IntegrityError:
            if attempt == 2:
                raise
    return []


def _skip(ctx: PlanContext, *, member_id: int, branch_id: int, channel: str, reason: SkipReason,
          now: datetime) -> dict[str, Any]:
    return {"campaign_id": ctx.campaign_id, "member_id": member_id, "branch_id": branch_id, "channel": channel,
            "reason": reason.value, "created_at": now}


def _why_not(index: str | None, suppressed: set[str]) -> SkipReason | None:
    """Why a contact cannot be used on its channel, or None if it can."""
    if not index:
        return SkipReason.NO_ADDRESS
    return SkipReason.SUPPRESSED if index in suppressed else None


def _sms_instead(ctx: PlanContext, *, member_id: int, branch_id: int, phone_index: str | None,
                 suppressed: set[str], email_language: str, email_variant: str, now: datetime,
                 fallback_of: int | None, rows: list[dict[str, Any]], skips: list[dict[str, Any]]) -> None:
    """The SMS fallback for one member whose email cannot reach them: a delivery, or a skip saying why not."""
    reason = _why_not(phone_index, suppressed)
    if reason is not None:
        skips.append(_skip(ctx, member_id=member_id, branch_id=branch_id, channel=Channel.SMS, reason=reason, now=now))
        return
    # The email's language and exposed categories (kept in its variant) stand for the SMS too.
    language = ctx.language_for(Channel.SMS, email_language)
    rows.append(_row(ctx, member_id=member_id, branch_id=branch_id, channel=Channel.SMS, language=language,
                     variant=f"{language}:{email_variant.partition(':')[2]}", now=now, fallback_of=fallback_of))


def plan_chunk(session: Session, ctx: PlanContext, after_id: int, limit: int,
               suppressed: dict[str, set[str]] | None = None) -> tuple[int, int]:
    """Plan the next page of the audience; returns (last member id seen, members seen).

    A member with no usable address on a channel gets no delivery there, but a skip row saying why
    (no address on file, or suppressed); with SMS fallback, one with no usable email gets the SMS at once.
    """
    repo = DeliveryRepository(session)
    exclude = repo.reached_member_ids(ctx.incident_id) if ctx.not_reached else None
    page = member_service.audience_page(
        session, incident_id=ctx.incident_id, category_ids=ctx.category_ids, branch_ids=ctx.branch_ids,
        language=ctx.language, exclude_member_ids=exclude, after_id=after_id, limit=limit)
    if not page:
        return after_id, 0
    if suppressed is None:
        suppressed = {
            Channel.EMAIL: repo.suppressed(Channel.EMAIL, (m.email_index for m in page if m.email_index)),
            Channel.SMS: repo.suppressed(Channel.SMS, (m.phone_index for m in page if m.phone_index)),
        }
    now = utcnow()
    rows: list[dict[str, Any]] = []
    skips: list[dict[str, Any]] = []
    for m in page:
        for channel in ctx.channels:
            index = m.email_index if channel == Channel.EMAIL else m.phone_index
            language = ctx.language_for(channel, m.language)
            variant = ctx.variant(language, m.category_ids)
            reason = _why_not(index, suppressed[channel])
            if reason is None:
                rows.append(_row(ctx, member_id=m.member_id, branch_id=m.branch_id, channel=channel,
                                 language=language, variant=variant, now=now))
                continue
            skips.append(_skip(ctx, member_id=m.member_id, branch_id=m.branch_id, channel=channel, reason=reason,
                               now=now))
            if channel == Channel.EMAIL and ctx.sms_fallback:
                _sms_instead(ctx, member_id=m.member_id, branch_id=m.branch_id, phone_index=m.phone_index,
                             suppressed=suppressed[Channel.SMS], email_language=language, email_variant=variant,
                             now=now, fallback_of=None, rows=rows, skips=skips)
    _insert(session, rows)
    repo.insert_skips(skips)
    return page[-1].member_id, len(page)


def plan_sms_fallback(session: Session, email_delivery_ids: Sequence[int]) -> list[int]:
    """Plan the SMS version for members whose email failed for good, if they have a usable phone.

    The one place a fallback is planned for an email that failed: at the provider, on a later bounce or
    out of attempts (a member with no usable email at all gets the SMS when planned, through the same
    `_sms_instead`). Ids may span campaigns.
    """
    if not email_delivery_ids:
        return []
    repo = DeliveryRepository(session)
    per_campaign: dict[int, list[Any]] = {}
    for d in repo.rows(email_delivery_ids):
        if d.channel == Channel.EMAIL:
            per_campaign.setdefault(d.campaign_id, []).append(d)
    new_ids: list[int] = []
    for campaign_id, failed in per_campaign.items():
        # Shared lock first: completion waits for these rows to commit, or they wait for it and reopen it.
        status = lock_status(session, campaign_id, shared=True)
        if status is None or status == CampaignStatus.CANCELLED:
            continue  # nothing serves a cancelled campaign: a fallback would stay queued for ever
        campaign = CampaignRepository(session).get(campaign_id)
        assert campaign is not None
        ctx = PlanContext.load(session, campaign)
        if not ctx.sms_fallback:
            continue
        added = _fallback_rows(session, ctx, failed)
        if added:
            if status == CampaignStatus.COMPLETED:
                reopen_for_fallback(session, campaign_id)
            jobs.enqueue_senders(session, campaign_id, [Channel.SMS])
        new_ids += added
    return new_ids


def _fallback_rows(session: Session, ctx: PlanContext, failed: Sequence[Any]) -> list[int]:
    repo = DeliveryRepository(session)
    contacts = member_service.contacts(session, [d.member_id for d in failed], open_email=False, open_phone=False)
    suppressed = repo.suppressed(Channel.SMS, (c.phone_index for c in contacts.values() if c.phone_index))
    now = utcnow()
    rows: list[dict[str, Any]] = []
    skips: list[dict[str, Any]] = []
    for member_id, d in {d.member_id: d for d in failed}.items():
        contact = contacts.get(member_id)
        if contact is None:
            continue  # the member has been erased since
        _sms_instead(ctx, member_id=member_id, branch_id=contact.branch_id, phone_index=contact.phone_index,
                     suppressed=suppressed, email_language=d.language, email_variant=d.variant, now=now,
                     fallback_of=d.id, rows=rows, skips=skips)
    repo.insert_skips(skips)
    return _insert(session, rows)


FIRST_PLAN_CHUNK = 1000


def plan_campaign(factory: SessionFactory, campaign_id: int) -> bool:
    """Plan every chunk of a sending campaign (idempotent); returns True once it is fully planned."""
    settings = get_settings()
    after = 0
    started_senders = False
    suppressed: dict[str, set[str]] | None = None
    while True:
        with session_scope(factory) as session:
            repo = CampaignRepository(session)
            # A chunk planned while the campaign is being cancelled would be left queued for ever.
            campaign = repo.hold(campaign_id)
            if campaign is None or campaign.status != CampaignStatus.SENDING or repo.sending_stopped():
                return False
            ctx = PlanContext.load(session, campaign)
            if campaign.planned_at is None:
                if suppressed is None:  # lists are small; read once per planning run
                    deliveries = DeliveryRepository(session)
                    suppressed = {c: deliveries.all_suppressed(c) for c in (Channel.EMAIL, Channel.SMS)}
                # A small first page lets the senders start at once; the rest go in full pages.
                size = settings.PLAN_CHUNK if started_senders else min(settings.PLAN_CHUNK, FIRST_PLAN_CHUNK)
                after, seen = plan_chunk(session, ctx, after, size, suppressed)
                repo.touch(campaign_id, utcnow())
                done = seen == 0
            else:
                done = True
            if done:
                campaign.planned_at = campaign.planned_at or utcnow()
            if not started_senders:
                # Senders start as soon as the first chunk is planned and overlap the rest of planning.
                jobs.enqueue_senders(session, campaign_id, ctx.channels + ([Channel.SMS] if ctx.sms_fallback else []))
                started_senders = True
        if done:
            log.info("campaign %s planned", campaign_id)
            return True

