"""Campaigns as an operator surveys them: the list, and whom an audience can reach by which channel."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from app.incidents import service as incident_service
from app.members import service as member_service
from app.notices.models import Channel
from app.notices.planning import PlanContext
from app.notices.repository import CampaignRepository, DeliveryRepository
from app.notices.service import get_campaign


@dataclass(frozen=True)
class CampaignLine:
    id: int
    name: str
    incident: str
    channels: str
    sms_fallback: bool
    status: str
    created_at: datetime
    scheduled_at: datetime | None
    completed_at: datetime | None


def list_campaigns(session: Session, *, last: int = 50) -> list[CampaignLine]:
    """The newest `last` campaigns, newest first."""
    codes = {i.id: code for code, i in incident_service.incidents_by_code(session).items()}
    campaigns = sorted(CampaignRepository(session).all(), key=lambda c: c.id, reverse=True)[:max(1, last)]
    return [CampaignLine(c.id, c.name, codes.get(c.incident_id, "?"), c.channels, c.sms_fallback, c.status,
                         c.created_at, c.scheduled_at, c.completed_at) for c in campaigns]


@dataclass
class ChannelReach:
    usable: int = 0  # members with an address this channel can send to
    no_address: int = 0  # none on file (for SMS: no number that can take texts)
    suppressed: int = 0  # the address is on the suppression list


@dataclass
class AudienceSummary:
    members: int = 0
    channels: dict[str, ChannelReach] = field(default_factory=dict)
    sms_fallback: int = 0  # members whose email cannot go but whose SMS can (when the fallback is on)
    unreachable: int = 0  # members no channel of the campaign can reach: letters or the helpline


PAGE = 5000


def audience_summary(session: Session, campaign_id: int, *,
                     on_progress: Callable[[int], None] | None = None) -> AudienceSummary:
    """Members in the campaign's audience now, per channel with and without a usable address."""
    campaign = get_campaign(session, campaign_id)
    ctx = PlanContext.load(session, campaign)
    deliveries = DeliveryRepository(session)
    suppressed = {c: deliveries.all_suppressed(c) for c in (Channel.EMAIL, Channel.SMS)}
    exclude = deliveries.reached_member_ids(ctx.incident_id) if ctx.not_reached else None
    summary = AudienceSummary(channels={c.value: ChannelReach() for c in ctx.channels})
    after = 0
    while True:
        page = member_service.audience_page(
            session, incident_id=ctx.incident_id, category_ids=ctx.category_ids, branch_ids=ctx.branch_ids,
            language=ctx.language, exclude_member_ids=exclude, after_id=after, limit=PAGE)
        for m in page:
            usable = {}
            for channel, index in ((Channel.EMAIL, m.email_index), (Channel.SMS, m.phone_index)):
                usable[channel] = bool(index) and index not in suppressed[channel]
                reach = summary.channels.get(channel.value)
                if reach is None:
                    continue
                if not index:
                    reach.no_address += 1
                elif not usable[channel]:
                    reach.suppressed += 1
                else:
                    reach.usable += 1
            fallback = (ctx.sms_fallback and Channel.EMAIL in ctx.channels and not usable[Channel.EMAIL]
                        and usable[Channel.SMS])
            summary.sms_fallback += fallback
            summary.unreachable += not (fallback or any(usable[c] for c in ctx.channels))
        summary.members += len(page)
        if on_progress is not None:
            on_progress(summary.members)
        if len(page) < PAGE:
            return summary
        after = page[-1].member_id
