"""Writing an incident's public content: drafts, publishing, updates, FAQ, guidance, each change audited."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.errors import AppError, Conflict, NotFound
from app.incidents import content
from app.incidents import service as incident_service
from app.incidents.content import ContentProblem

from .conftest import INCIDENT_CY, INCIDENT_EN, post_update, write_incident


def audit_actions(session: Session) -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    rows = session.execute(select(AuditEvent).where(AuditEvent.action.like("incident.%")).order_by(AuditEvent.id))
    return [(e.action, e.actor, e.details) for e in rows.scalars()]


def test_an_incident_starts_as_a_draft_and_is_public_once_published(session: Session) -> None:
    write_incident(session, code="inc-a", publish=False)
    assert incident_service.public_incidents(session) == []
    incident_service.set_published(session, code="inc-a", published=True, actor="admin@example.org")
    [shown] = incident_service.public_incidents(session)
    assert shown.incident.title_cy == "Ymosodiad ar ein systemau"
    assert shown.incident.helpline_hours == "9am to 5pm" and shown.incident.published_at is not None
    incident_service.set_published(session, code="inc-a", published=False, actor="admin@example.org")
    assert incident_service.public_incidents(session) == []
    assert [a for a, _, _ in audit_actions(session)] == ["incident.create", "incident.publish", "incident.unpublish"]
    assert {actor for _, actor, _ in audit_actions(session)} == {"admin@example.org"}


def test_create_refuses_an_existing_code_and_edit_an_unknown_one(session: Session) -> None:
    write_incident(session, code="inc-b")
    en, cy = content.parse_incident(INCIDENT_EN), content.parse_incident(INCIDENT_CY)
    with pytest.raises(Conflict, match="portal incident edit"):
        incident_service.write_incident(session, code="inc-b", en=en, cy=cy, actor="a", new=True)
    with pytest.raises(NotFound, match="portal incident create"):
        incident_service.write_incident(session, code="inc-zz", en=en, cy=cy, actor="a", new=False)
    with pytest.raises(AppError, match="lower-case letters"):
        incident_service.write_incident(session, code="Bad Code!", en=en, cy=cy, actor="a", new=True)


def test_editing_replaces_the_text_in_both_languages_and_keeps_the_rest(session: Session) -> None:
    write_incident(session, code="inc-c")
    en = content.parse_incident(INCIDENT_EN.replace("three databases", "four databases"))
    cy = content.parse_incident(INCIDENT_CY.replace("dair cronfa ddata", "pedair cronfa ddata"))
    found = incident_service.write_incident(session, code="inc-c", en=en, cy=cy, actor="admin@example.org",
                                            new=False)
    assert "four databases" in found.happened and "pedair" in found.happened_cy
    assert found.published and found.helpline_hours == "9am to 5pm"
    assert audit_actions(session)[-1][0] == "incident.edit"


def test_helpline_hours_come_in_both_languages_and_on_one_line(session: Session) -> None:
    en, cy = content.parse_incident(INCIDENT_EN), content.parse_incident(INCIDENT_CY)
    with pytest.raises(AppError, match="both English and Welsh"):
        incident_service.write_incident(session, code="inc-d", en=en, cy=cy, actor="a", new=True,
                                        helpline_hours="9 to 5")
    with pytest.raises(ContentProblem):
        incident_service.write_incident(session, code="inc-d", en=en, cy=cy, actor="a", new=True,
                                        helpline_hours="9 to 5\u202e", helpline_hours_cy="9 tan 5")


def test_an_incident_without_its_page_text_cannot_be_published(session: Session) -> None:
    incident_service.create_incident(session, code="bare", title="Bare", summary="x")
    with pytest.raises(Conflict, match="no page text"):
        incident_service.set_published(session, code="bare", published=True, actor="a")


def test_updates_are_numbered_in_order_and_shown_newest_first(session: Session) -> None:
    write_incident(session, code="inc-e")
    first = post_update(session, code="inc-e", title="First", at=datetime(2019, 3, 21, tzinfo=UTC))
    second = post_update(session, code="inc-e", title="Second", at=datetime(2019, 3, 22, tzinfo=UTC))
    assert (first, second) == (1, 2)
    [shown] = incident_service.public_incidents(session)
    assert [u.title for u in shown.updates] == ["Second", "First"]
    incident, update = incident_service.public_update(session, code="inc-e", number=1)
    assert update.title == "First" and update.title_cy == "Llinell gymorth ar agor"
    with pytest.raises(NotFound):
        incident_service.public_update(session, code="inc-e", number=3)
    assert [d["number"] for a, _, d in audit_actions(session) if a == "incident.update"] == [1, 2]


def test_an_update_of_an_unpublished_incident_is_not_public(session: Session) -> None:
    write_incident(session, code="inc-f", publish=False)
    post_update(session, code="inc-f")
    with pytest.raises(NotFound):
        incident_service.public_update(session, code="inc-f", number=1)


def test_the_faq_is_replaced_whole_and_both_languages_must_pair_up(session: Session) -> None:
    write_incident(session, code="inc-g")
    en = content.parse_faq("## One?\n\nA1\n\n## Two?\n\nA2")
    cy = content.parse_faq("## Un?\n\nA1\n\n## Dau?\n\nA2")
    assert incident_service.set_faq(session, code="inc-g", en=en, cy=cy, actor="a") == 2
    assert incident_service.set_faq(session, code="inc-g", en=en[:1], cy=cy[:1], actor="a") == 1
    [shown] = incident_service.public_incidents(session)
    assert [(q.question, q.question_cy) for q in shown.questions] == [("One?", "Un?")]
    with pytest.raises(ContentProblem, match="pair up"):
        incident_service.set_faq(session, code="inc-g", en=en, cy=cy[:1], actor="a")
    assert [d["questions"] for a, _, d in audit_actions(session) if a == "incident.faq"] == [2, 1]


def test_guidance_per_category_overrides_the_standing_advice_for_that_incident(session: Session) -> None:
    write_incident(session, code="inc-h")
    found = incident_service.incident_by_code(session, "inc-h")
    standing = incident_service.category_guidance(session, incident_id=found.id, lang="en")
    incident_service.set_guidance(session, code="inc-h", category="bank_details", en="Call **159**.",
                                  cy="Ffoniwch **159**.", actor="a")
    incident_service.set_guidance(session, code="inc-h", category="bank_details", en="Call your bank on **159**.",
                                  cy="Ffoniwch eich banc ar **159**.", actor="a")
    english = incident_service.category_guidance(session, incident_id=found.id, lang="en")
    welsh = incident_service.category_guidance(session, incident_id=found.id, lang="cy")
    assert english["bank_details"] == "<p>Call your bank on <strong>159</strong>.</p>\n"
    assert "Ffoniwch eich banc" in welsh["bank_details"]
    assert english["ni_number"] == standing["ni_number"] and "Cyfrif" not in english["ni_number"]
    [shown] = incident_service.public_incidents(session)
    assert [g.category.code for g in shown.guidance] == ["bank_details"]
    with pytest.raises(NotFound, match="known: "):
        incident_service.set_guidance(session, code="inc-h", category="shoe_size", en="x", cy="y", actor="a")
    assert [d["category"] for a, _, d in audit_actions(session) if a == "incident.guidance"] == ["bank_details"] * 2


def test_an_older_demo_incident_without_page_text_gets_it_and_a_full_one_is_left_alone(session: Session) -> None:
    from app.demo.incident import write_demo_incident

    incident_service.create_incident(session, code="hq-2019", title="Cyber attack on our headquarters systems",
                                     summary="Old summary.", published=True)
    filled = write_demo_incident(session, code="hq-2019")
    assert filled is not None and filled.happened and filled.doing_cy and filled.helpline_hours
    [shown] = incident_service.public_incidents(session)
    assert len(shown.questions) == 6 and len(shown.guidance) == 5
    assert write_demo_incident(session, code="hq-2019") is None
