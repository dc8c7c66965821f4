"""Fixtures for the notice engine: a small demo organisation and campaigns at each stage."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.config import ROOT
from app.demo.service import INCIDENT_CODE, load_demo
from app.notices import planning, service
from app.notices.models import Campaign, Channel, Delivery
from app.worker import broker

TEMPLATES = ROOT / "templates" / "notices" / "breach"
AUTHOR = "admin@example.org"
APPROVER = "approver@example.org"


@pytest.fixture(autouse=True)
def _empty_broker() -> Iterator[None]:
    broker.flush_all()  # type: ignore[attr-defined]
    yield
    broker.flush_all()  # type: ignore[attr-defined]


@pytest.fixture
def demo(session: Session) -> Any:
    result = load_demo(session, members=120)
    session.flush()
    return result


def draft(session: Session, *, channels: tuple[Channel, ...] = (Channel.EMAIL,), sms_fallback: bool = True,
          **audience: Any) -> Campaign:
    return service.create_campaign(
        session, name="test notice", incident_code=INCIDENT_CODE, channels=list(channels),
        audience=service.Audience(**audience), templates=service.load_template_dir(TEMPLATES), author_email=AUTHOR,
        sms_fallback=sms_fallback)


@pytest.fixture
def sending_campaign(session: Session, session_factory: sessionmaker[Session], demo: Any
                     ) -> Callable[..., Campaign]:
    """Create, approve, start and plan a campaign; returns it with its deliveries in place."""

    def make(**kwargs: Any) -> Campaign:
        campaign = draft(session, **kwargs)
        service.approve(session, campaign.id, approver_email=APPROVER)
        service.send(session, campaign.id, actor=APPROVER)
        session.commit()
        assert planning.plan_campaign(session_factory, campaign.id)
        session.expire_all()
        return campaign

    return make


def deliveries(session: Session, campaign_id: int, channel: str | None = None) -> list[Delivery]:
    session.expire_all()
    stmt = select(Delivery).where(Delivery.campaign_id == campaign_id).order_by(Delivery.id)
    if channel:
        stmt = stmt.where(Delivery.channel == channel)
    return list(session.execute(stmt).scalars())


def statuses(session: Session, campaign_id: int, channel: str | None = None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in deliveries(session, campaign_id, channel):
        counts[d.status] = counts.get(d.status, 0) + 1
    return counts


def make_due(session: Session, campaign_id: int) -> None:
    """Let retries that were pushed into the future run now (instead of sleeping in a test)."""
    from app.db import utcnow

    session.execute(update(Delivery).where(Delivery.campaign_id == campaign_id).values(next_attempt_at=utcnow()))
    session.commit()
