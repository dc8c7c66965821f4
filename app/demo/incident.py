"""The demo incident's public page, written from the same Markdown files an operator would use."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from app.incidents import content
from app.incidents import service as incident_service
from app.incidents.models import Incident

CONTENT = Path(__file__).parent / "content"
UPDATES = [datetime(2019, 3, 21, 9, tzinfo=UTC), datetime(2019, 3, 22, 8, tzinfo=UTC),
           datetime(2019, 3, 26, 12, tzinfo=UTC)]
GUIDANCE = ["police_email", "ni_number", "home_address", "card_details", "bank_details"]
ACTOR = "demo"


def _pair(name: str) -> tuple[str, str]:
    return (CONTENT / f"{name}.en.md").read_text("utf-8"), (CONTENT / f"{name}.cy.md").read_text("utf-8")


def write_demo_incident(session: Session, *, code: str) -> Incident | None:
    """Create, fill and publish the demo incident with its updates, FAQ and guidance, in both languages.

    A demo incident from before the page had its text (an older database) gets the text, FAQ and guidance;
    one that has them is left as it is.
    """
    existing = incident_service.incidents_by_code(session).get(code)
    if existing is not None and existing.happened:
        return None
    en, cy = _pair("incident")
    incident = incident_service.write_incident(
        session, code=code, en=content.parse_incident(en), cy=content.parse_incident(cy), actor=ACTOR,
        new=existing is None, helpline_hours="8am to 8pm every day", helpline_hours_cy="rhwng 8am ac 8pm bob dydd",
        occurred_at=datetime(2019, 3, 9, 19, tzinfo=UTC), discovered_at=datetime(2019, 3, 9, 19, tzinfo=UTC))
    if existing is None:
        incident_service.set_published(session, code=code, published=True, actor=ACTOR)
        incident.published_at = UPDATES[0]
        for number, when in enumerate(UPDATES, start=1):
            en, cy = _pair(f"update-{number}")
            incident_service.post_update(session, code=code, en=content.parse_update(en),
                                         cy=content.parse_update(cy), actor=ACTOR, published_at=when)
    en, cy = _pair("faq")
    incident_service.set_faq(session, code=code, en=content.parse_faq(en), cy=content.parse_faq(cy), actor=ACTOR)
    for category in GUIDANCE:
        en, cy = _pair(f"guidance-{category}")
        incident_service.set_guidance(session, code=code, category=category, en=content.parse_guidance(en),
                                      cy=content.parse_guidance(cy), actor=ACTOR)
    session.flush()
    return incident
