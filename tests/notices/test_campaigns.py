"""Campaign lifecycle: four-eyes approval, sending, pause, resume, cancel and the global stop switch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.db import utcnow
from app.errors import AppError, Conflict, Forbidden
from app.notices import reconciling, service
from app.notices.models import CampaignStatus, Channel
from app.notices.rendering import TemplateProblem

from .conftest import APPROVER, AUTHOR, TEMPLATES, deliveries, draft


def actions(session: Session, campaign_id: int) -> list[str]:
    rows = session.execute(select(AuditEvent.action).where(AuditEvent.subject == f"campaign:{campaign_id}")
                           .order_by(AuditEvent.id)).scalars()
    return list(rows)


def test_only_an_admin_can_write_a_campaign(session: Session, demo: Any) -> None:
    with pytest.raises(Forbidden, match="not an admin"):
        service.create_campaign(session, name="x", incident_code="hq-2019", channels=[Channel.EMAIL],
                                audience=service.Audience(), templates=service.load_template_dir(TEMPLATES),
                                author_email="agent@example.org")


def test_unknown_filters_and_missing_templates_are_refused(session: Session, demo: Any) -> None:
    with pytest.raises(AppError, match="unknown branches: atlantis"):
        draft(session, branches=["atlantis"])
    with pytest.raises(AppError, match="unknown data categories"):
        draft(session, categories=["shoe_size"])
    only_email = [t for t in service.load_template_dir(TEMPLATES) if t.channel == Channel.EMAIL]
    with pytest.raises(TemplateProblem, match="SMS fallback needs one"):
        service.create_campaign(session, name="x", incident_code="hq-2019", channels=[Channel.EMAIL],
                                audience=service.Audience(), templates=only_email, author_email=AUTHOR)


def test_the_author_cannot_approve_their_own_campaign(session: Session, demo: Any) -> None:
    campaign = draft(session)
    with pytest.raises(Forbidden, match="different admin"):
        service.approve(session, campaign.id, approver_email=AUTHOR)
    with pytest.raises(Conflict, match="only an approved campaign"):
        service.send(session, campaign.id, actor=AUTHOR)
    service.approve(session, campaign.id, approver_email=APPROVER)
    assert campaign.status == CampaignStatus.APPROVED
    assert actions(session, campaign.id) == ["campaign.create", "campaign.approve"]


def test_a_scheduled_campaign_starts_when_due(session: Session, demo: Any) -> None:
    campaign = draft(session)
    service.approve(session, campaign.id, approver_email=APPROVER)
    service.send(session, campaign.id, actor=APPROVER, at=utcnow() + timedelta(hours=1))
    assert campaign.status == CampaignStatus.SCHEDULED
    assert reconciling.reconcile(session).started == []
    campaign.scheduled_at = utcnow() - timedelta(seconds=1)
    assert reconciling.reconcile(session).started == [campaign.id]
    assert campaign.status == CampaignStatus.SENDING


def test_pause_resume_and_cancel(session: Session, sending_campaign: Any) -> None:
    campaign = sending_campaign()
    service.pause(session, campaign.id, actor=APPROVER)
    with pytest.raises(Conflict):
        service.pause(session, campaign.id, actor=APPROVER)
    service.resume(session, campaign.id, actor=APPROVER)
    assert campaign.status == CampaignStatus.SENDING
    _, cancelled = service.cancel(session, campaign.id, actor=APPROVER)
    queued_before = cancelled
    assert queued_before > 0
    assert {d.status for d in deliveries(session, campaign.id)} <= {"cancelled", "failed"}
    with pytest.raises(Conflict, match="already cancelled"):
        service.cancel(session, campaign.id, actor=APPROVER)
    assert actions(session, campaign.id)[-3:] == ["campaign.pause", "campaign.resume", "campaign.cancel"]


def test_status_report_counts_by_channel_and_status(session: Session, sending_campaign: Any) -> None:
    campaign = sending_campaign(channels=(Channel.EMAIL, Channel.SMS))
    report = service.status_report(session, campaign.id).as_dict()
    rows = deliveries(session, campaign.id)
    assert report["total"] == len(rows)
    for channel in ("email", "sms"):
        expected = {}
        for d in rows:
            if d.channel == channel:
                expected[d.status] = expected.get(d.status, 0) + 1
        assert {k: v for k, v in report["counts"][channel].items() if v} == expected
