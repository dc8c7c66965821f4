"""The notice engine's background work, queued by actor name so that no service imports the actors.

The actors themselves live in app/notices/tasks.py, which the entry points load (app/tasks.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.config import get_settings
from app.notices.models import Channel
from app.worker import enqueue

PLAN = "notices.plan"
SEND_EMAIL = "notices.send_email"
SEND_SMS = "notices.send_sms"
RECONCILE = "notices.reconcile"
SIMULATE_SENDGRID_EVENTS = "notices.simulate_sendgrid_events"
SIMULATE_TWILIO_STATUS = "notices.simulate_twilio_status"


def enqueue_planning(session: Session, campaign_id: int) -> None:
    """Plan (or go on planning) a sending campaign once `session` commits."""
    enqueue(session, PLAN, campaign_id=campaign_id)


def enqueue_senders(session: Session, campaign_id: int, channels: Sequence[Channel]) -> None:
    """Start each channel's senders once `session` commits; a slot whose sender is alive is not doubled."""
    settings = get_settings()
    for channel in dict.fromkeys(channels):
        count = settings.EMAIL_SENDERS if channel == Channel.EMAIL else settings.SMS_SENDERS
        name = SEND_EMAIL if channel == Channel.EMAIL else SEND_SMS
        for slot in range(count):
            enqueue(session, name, campaign_id=campaign_id, channel=channel.value, slot=slot, token=uuid.uuid4().hex)
