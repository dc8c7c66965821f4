"""Campaign state changes."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from app.db import utcnow
from app.notices.models import Campaign, CampaignStatus
from app.notices.repository import CampaignRepository, DeliveryRepository

log = logging.getLogger(__name__)


def complete_if_done(session: Session, campaign: Campaign) -> bool:
    """A fully planned campaign with nothing queued or leased is complete."""
    if campaign.status != CampaignStatus.SENDING or campaign.planned_at is None:
        return False
    if DeliveryRepository(session).pending_channels(campaign.id):
        return False
    locked = CampaignRepository(session).lock(campaign.id)
    if locked is None or locked.status != CampaignStatus.SENDING:
        return False
    locked.status = CampaignStatus.COMPLETED
    locked.completed_at = utcnow()
    log.info("campaign %s completed", campaign.id)
    return True
