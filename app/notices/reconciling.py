"""The reconciler: expired leases go back, due schedules start, lost senders restart, finished campaigns complete."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import utcnow
from app.notices import jobs
from app.notices.models import CampaignStatus, Channel
from app.notices.planning import plan_sms_fallback
from app.notices.repository import CampaignRepository, DeliveryRepository
from app.notices.transitions import complete_if_done, try_transition


@dataclass
class Reconciled:
    leases_requeued: int = 0
    leases_failed: int = 0
    started: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    nudged: list[int] = field(default_factory=list)


def reconcile(session: Session) -> Reconciled:
    """Return expired leases, start due schedules, restart senders the queue lost, complete finished campaigns."""
    result = reconcile_leases(session)
    reconcile_campaigns(session, result)
    return result


def reconcile_leases(session: Session) -> Reconciled:
    """Expired leases go back to the queue (or fail, out of attempts, and fall back to SMS)."""
    settings = get_settings()
    result = Reconciled()
    deliveries = DeliveryRepository(session)
    now = utcnow()
    result.leases_requeued, failed = deliveries.expire_leases(now, settings.SEND_MAX_ATTEMPTS)
    result.leases_failed = len(failed)
    if failed:
        plan_sms_fallback(session, failed)
    return result


def reconcile_campaigns(session: Session, result: Reconciled) -> None:
    """Start due schedules, restart planning and senders the queue lost, complete finished campaigns."""
    settings = get_settings()
    deliveries = DeliveryRepository(session)
    campaigns = CampaignRepository(session)
    now = utcnow()
    for campaign in campaigns.with_status(CampaignStatus.SCHEDULED):
        if campaign.scheduled_at is None or campaign.scheduled_at > now:
            continue
        # Guarded: a pause or cancel committed since the read above wins, and the schedule is left alone.
        if try_transition(session, campaign.id, expected=CampaignStatus.SCHEDULED, to=CampaignStatus.SENDING,
                          started_at=campaign.started_at or now, heartbeat_at=None):
            jobs.enqueue_planning(session, campaign.id)
            result.started.append(campaign.id)
    stopped = campaigns.sending_stopped()
    for campaign in campaigns.with_status(CampaignStatus.SENDING):
        if campaign.id in result.started:
            continue
        if campaign.planned_at is None:
            # In the embedded default a command's planning job never reaches this process: start it now.
            last = campaign.heartbeat_at or (None if settings.embedded else campaign.started_at)
            stale = last is None or (now - last).total_seconds() > settings.STALL_SECONDS
            if stale and not stopped:
                jobs.enqueue_planning(session, campaign.id)
                result.nudged.append(campaign.id)
            continue
        channels = deliveries.pending_channels(campaign.id)
        if not channels:
            if complete_if_done(session, campaign.id):
                result.completed.append(campaign.id)
        elif not stopped:
            # Senders whose chain is still alive hold their slot, so these extra jobs give way at once.
            jobs.enqueue_senders(session, campaign.id, [Channel(c) for c in channels])
            result.nudged.append(campaign.id)
