"""Helpers for the incident pages: a published incident written the way operators write it."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.incidents import content
from app.incidents import service as incident_service
from app.incidents.models import Incident

INCIDENT_EN = """# Attack on our systems

We found malware on our servers.

## What happened

Ransomware reached **three databases**.

## What we are doing

We told the regulator on 11 March.

## What you should do

Check any message on [our checker](/verify-message).
"""
INCIDENT_CY = """# Ymosodiad ar ein systemau

Daethom o hyd i faleiswedd ar ein gweinyddion.

## Beth ddigwyddodd

Cyrhaeddodd meddalwedd wystlo **dair cronfa ddata**.

## Beth rydym yn ei wneud

Dywedasom wrth y rheoleiddiwr ar 11 Mawrth.

## Beth y dylech ei wneud

Gwiriwch unrhyw neges ar [ein gwiriwr](/verify-message).
"""


def write_incident(session: Session, *, code: str = "web-1", publish: bool = True) -> Incident:
    found = incident_service.write_incident(
        session, code=code, en=content.parse_incident(INCIDENT_EN), cy=content.parse_incident(INCIDENT_CY),
        actor="admin@example.org", new=True, helpline_hours="9am to 5pm", helpline_hours_cy="rhwng 9am a 5pm",
        discovered_at=datetime(2019, 3, 9, 19, tzinfo=UTC))
    if publish:
        incident_service.set_published(session, code=code, published=True, actor="admin@example.org")
    return found


def post_update(session: Session, *, code: str = "web-1", title: str = "Helpline open", body: str = "Call us.",
                title_cy: str = "Llinell gymorth ar agor", body_cy: str = "Ffoniwch ni.",
                at: datetime | None = None) -> int:
    update = incident_service.post_update(
        session, code=code, en=content.UpdateText(title, body), cy=content.UpdateText(title_cy, body_cy),
        actor="admin@example.org", published_at=at)
    return update.number


def csrf_token(client: TestClient, path: str) -> str:
    """The token from a page's form, as a browser would send it back."""
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def visible_text(page: str) -> str:
    """The page's words as a reader meets them (no tags, no attributes)."""
    body = re.sub(r"(?s)<(script|style|head)\b.*?</\1>", " ", page)
    body = re.sub(r"(?s)</?(strong|em|a|code|span|time)\b[^>]*>", "", body)  # inline: no word break
    body = re.sub(r"(?s)<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", html.unescape(body))


WELSH_AND_ENGLISH_BRANCHES = ["gwent", "south-wales", "north-wales", "dyfed-powys", "metropolitan"]


@pytest.fixture(autouse=True)
def _empty_broker() -> Iterator[None]:
    from app.worker import broker

    broker.flush_all()  # type: ignore[attr-defined]
    yield
    broker.flush_all()  # type: ignore[attr-defined]


@pytest.fixture
def sent_campaign(session: Session, session_factory: sessionmaker[Session]) -> Callable[..., int]:
    """The demo organisation and a campaign of the default notice templates sent through the outbox provider."""
    from app.config import ROOT
    from app.demo.service import INCIDENT_CODE, load_demo
    from app.kit.ratelimit import LocalLimiter
    from app.notices import planning, sending
    from app.notices import service as notice_service
    from app.notices.models import Channel
    from app.providers.outbox import OutboxEmailSender, OutboxSmsSender

    def send(*, members: int = 300, channels: tuple[str, ...] = ("email", "sms"), deliver: bool = True) -> int:
        load_demo(session, members=members)
        campaign = notice_service.create_campaign(
            session, name="notice", incident_code=INCIDENT_CODE, channels=[Channel(c) for c in channels],
            audience=notice_service.Audience(branches=WELSH_AND_ENGLISH_BRANCHES),
            templates=notice_service.load_template_dir(ROOT / "templates" / "notices" / "breach"),
            author_email="admin@example.org", sms_fallback=False)
        notice_service.approve(session, campaign.id, approver_email="approver@example.org")
        notice_service.send(session, campaign.id, actor="approver@example.org")
        session.commit()
        assert planning.plan_campaign(session_factory, campaign.id)
        email, sms = OutboxEmailSender(session_factory), OutboxSmsSender(session_factory)
        for channel in channels if deliver else ():
            for _ in range(500):
                if sending.send_chunk(session_factory, campaign.id, channel, email_sender=email, sms_sender=sms,
                                      limiter=LocalLimiter(10_000)) != 0.0:
                    break
        session.expire_all()
        return campaign.id

    return send
