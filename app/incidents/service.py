"""Incidents, their public page content and timeline, and the catalogue of data categories."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.db import utcnow
from app.errors import AppError, Conflict, NotFound
from app.incidents import content, markdown
from app.incidents.models import DataCategory, Incident, IncidentGuidance, IncidentQuestion, IncidentUpdate
from app.incidents.repository import (
    DataCategoryRepository,
    IncidentGuidanceRepository,
    IncidentQuestionRepository,
    IncidentRepository,
    IncidentUpdateRepository,
)

CODE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True)
class Guidance:
    category: DataCategory
    guidance: str
    guidance_cy: str


@dataclass(frozen=True)
class PublicIncident:
    incident: Incident
    updates: Sequence[IncidentUpdate]
    questions: Sequence[IncidentQuestion] = ()
    guidance: Sequence[Guidance] = ()


def public_incidents(session: Session) -> list[PublicIncident]:
    """Published incidents, newest first, each with its dated updates, FAQ and per-category guidance."""
    incidents = IncidentRepository(session).published()
    if not incidents:
        return []
    ids = [i.id for i in incidents]
    updates = IncidentUpdateRepository(session).for_incidents(ids)
    questions = IncidentQuestionRepository(session).for_incidents(ids)
    categories = categories_by_id(session)
    guidance = IncidentGuidanceRepository(session).for_incidents(ids)
    return [PublicIncident(
        i, [u for u in updates if u.incident_id == i.id], [q for q in questions if q.incident_id == i.id],
        [Guidance(categories[g.category_id], g.guidance, g.guidance_cy) for g in guidance if g.incident_id == i.id],
    ) for i in incidents]


def public_update(session: Session, *, code: str, number: int) -> tuple[Incident, IncidentUpdate]:
    """One update of a published incident, for its own page."""
    found = IncidentRepository(session).by_code(code)
    update = IncidentUpdateRepository(session).by_number(found.id, number) if found and found.published else None
    if found is None or update is None:
        raise NotFound("no such update")
    return found, update


def content_version(session: Session) -> tuple[int, object]:
    """A value that changes whenever anything on the public incident page or feed may have changed."""
    return IncidentRepository(session).version()


def _touch(found: Incident) -> None:
    # Updates, questions and guidance live in tables of their own: the incident's own change time is the
    # page's version, so it moves with them.
    found.updated_at = utcnow()


def incidents_by_code(session: Session) -> dict[str, Incident]:
    """Every incident per code, for validating imports."""
    return {i.code: i for i in IncidentRepository(session).all()}


def list_incidents(session: Session) -> Sequence[Incident]:
    """Every incident, newest first (for operators)."""
    return IncidentRepository(session).newest()


def categories_by_code(session: Session) -> dict[str, DataCategory]:
    """Every data category per code."""
    return {c.code: c for c in DataCategoryRepository(session).ordered()}


def categories_by_id(session: Session) -> dict[int, DataCategory]:
    """Every data category per id."""
    return {c.id: c for c in DataCategoryRepository(session).ordered()}


def guidance_sources(session: Session, *, incident_id: int, lang: str) -> dict[str, str]:
    """The one source of what to do per category code for one incident, as written (Markdown): the incident's
    own words, else the category's standing guidance. Pages and notices alike use it."""
    own = {g.category_id: g for g in IncidentGuidanceRepository(session).for_incidents([incident_id])}
    result: dict[str, str] = {}
    for category in DataCategoryRepository(session).ordered():
        source: DataCategory | IncidentGuidance = own.get(category.id, category)
        result[category.code] = (source.guidance_cy if lang == "cy" else "") or source.guidance
    return result


def category_guidance(session: Session, *, incident_id: int, lang: str) -> dict[str, Markup]:
    """What to do per category code for one incident, as safe HTML (from `guidance_sources`)."""
    return {code: markdown.render(text, top=4)
            for code, text in guidance_sources(session, incident_id=incident_id, lang=lang).items()}


def guidance_texts(session: Session, *, incident_id: int, lang: str, base_url: str) -> dict[str, str]:
    """What to do per category code for one incident, as plain text for a message (from `guidance_sources`)."""
    return {code: content.guidance_as_text(text, base_url=base_url)
            for code, text in guidance_sources(session, incident_id=incident_id, lang=lang).items()}


def incident(session: Session, incident_id: int) -> Incident:
    """One incident by id (it must exist)."""
    found = IncidentRepository(session).get(incident_id)
    if found is None:
        raise LookupError(f"no incident {incident_id}")
    return found


def incident_by_code(session: Session, code: str) -> Incident:
    """One incident by its code; NotFound names the code."""
    found = IncidentRepository(session).by_code(code)
    if found is None:
        raise NotFound(f"no incident with code {code!r}")
    return found


def _check_code(code: str) -> None:
    if not code or len(code) > 32 or set(code) - CODE_CHARS:
        raise AppError(f"an incident code is 1 to 32 lower-case letters, digits and hyphens, not {code!r}")


def create_incident(
    session: Session,
    *,
    code: str,
    title: str,
    summary: str,
    title_cy: str = "",
    summary_cy: str = "",
    occurred_at: datetime | None = None,
    discovered_at: datetime | None = None,
    published: bool = False,
    actor: str = "system",
) -> Incident:
    """Create an incident; codes are unique and appear in notices and imports."""
    repo = IncidentRepository(session)
    if repo.by_code(code):
        raise Conflict(f"an incident with code {code!r} already exists")
    created = repo.add(
        Incident(code=code, title=title, title_cy=title_cy, summary=summary, summary_cy=summary_cy,
                 occurred_at=occurred_at, discovered_at=discovered_at or utcnow(), published=published,
                 published_at=utcnow() if published else None),
        flush=True,
    )
    audit_service.record(session, actor=actor, action="incident.create", subject=f"incident:{created.id}",
                         code=code, published=published)
    return created


def _apply_text(found: Incident, en: content.IncidentText, cy: content.IncidentText) -> None:
    for field in ("title", "summary", "happened", "doing", "advice"):
        setattr(found, field, getattr(en, field))
        setattr(found, f"{field}_cy", getattr(cy, field))


def write_incident(
    session: Session,
    *,
    code: str,
    en: content.IncidentText,
    cy: content.IncidentText,
    actor: str,
    helpline_hours: str | None = None,
    helpline_hours_cy: str | None = None,
    new: bool,
    occurred_at: datetime | None = None,
    discovered_at: datetime | None = None,
) -> Incident:
    """Create an incident as a draft (`new`), or replace an existing one's page text."""
    _check_code(code)
    if (helpline_hours is None) != (helpline_hours_cy is None):
        raise AppError("give the helpline hours in both English and Welsh")
    for hours in (helpline_hours, helpline_hours_cy):
        if hours is not None and (len(hours) > 200 or content.has_unsafe_characters(hours)):
            raise content.ContentProblem("the helpline hours are one short line of text (200 characters at most)")
    repo = IncidentRepository(session)
    found = repo.by_code(code)
    if new and found is not None:
        raise Conflict(f"an incident with code {code!r} already exists: change it with `portal incident edit`")
    if not new and found is None:
        raise NotFound(f"no incident with code {code!r}: start one with `portal incident create`")
    if found is None:
        found = repo.add(Incident(code=code, discovered_at=discovered_at or utcnow(), occurred_at=occurred_at,
                                  published=False))
    else:
        found.occurred_at = occurred_at or found.occurred_at
        found.discovered_at = discovered_at or found.discovered_at
    _apply_text(found, en, cy)
    if helpline_hours is not None and helpline_hours_cy is not None:
        found.helpline_hours, found.helpline_hours_cy = helpline_hours.strip(), helpline_hours_cy.strip()
    session.flush()
    audit_service.record(session, actor=actor, action="incident.create" if new else "incident.edit",
                         subject=f"incident:{found.id}", code=code)
    return found


def set_published(session: Session, *, code: str, published: bool, actor: str) -> Incident:
    """Show an incident on the public page, or take it off."""
    found = incident_by_code(session, code)
    if published and not (found.happened and found.doing and found.advice):
        raise Conflict(f"incident {code!r} has no page text yet: write it with `portal incident edit` first")
    found.published = published
    if published and found.published_at is None:
        found.published_at = utcnow()
    session.flush()
    audit_service.record(session, actor=actor, action="incident.publish" if published else "incident.unpublish",
                         subject=f"incident:{found.id}", code=code)
    return found


def add_update(
    session: Session, *, incident: Incident, title: str, body: str, title_cy: str = "", body_cy: str = "",
    published_at: datetime | None = None, actor: str = "system",
) -> IncidentUpdate:
    """Add a dated entry to an incident's public timeline."""
    repo = IncidentUpdateRepository(session)
    when = published_at or utcnow()
    update = repo.add(
        IncidentUpdate(incident_id=incident.id, number=repo.next_number(incident.id), title=title, body=body,
                       title_cy=title_cy, body_cy=body_cy, published_at=when, updated_at=when),
        flush=True,
    )
    _touch(incident)
    audit_service.record(session, actor=actor, action="incident.update", subject=f"incident:{incident.id}",
                         code=incident.code, number=update.number)
    return update


def post_update(
    session: Session, *, code: str, en: content.UpdateText, cy: content.UpdateText, actor: str,
    published_at: datetime | None = None,
) -> IncidentUpdate:
    """Post a dated update, in English and Welsh, to an incident's timeline and feed."""
    found = incident_by_code(session, code)
    return add_update(session, incident=found, title=en.title, body=en.body, title_cy=cy.title, body_cy=cy.body,
                      published_at=published_at, actor=actor)


def set_faq(session: Session, *, code: str, en: Sequence[content.Question], cy: Sequence[content.Question],
            actor: str) -> int:
    """Replace an incident's FAQ; the English and Welsh files pair up question by question."""
    if len(en) != len(cy):
        raise content.ContentProblem(f"the English FAQ has {len(en)} questions and the Welsh one {len(cy)}: "
                                     "they must pair up in the same order")
    found = incident_by_code(session, code)
    repo = IncidentQuestionRepository(session)
    repo.remove_for(found.id)
    session.flush()
    for position, (q_en, q_cy) in enumerate(zip(en, cy, strict=True), start=1):
        repo.add(IncidentQuestion(incident_id=found.id, position=position, question=q_en.question,
                                  question_cy=q_cy.question, answer=q_en.answer, answer_cy=q_cy.answer))
    _touch(found)
    session.flush()
    audit_service.record(session, actor=actor, action="incident.faq", subject=f"incident:{found.id}", code=code,
                         questions=len(en))
    return len(en)


def set_guidance(session: Session, *, code: str, category: str, en: str, cy: str, actor: str) -> IncidentGuidance:
    """Set what members whose `category` data was exposed in this incident should do."""
    found = incident_by_code(session, code)
    cat = categories_by_code(session).get(category)
    if cat is None:
        raise NotFound(f"no data category {category!r}; known: {', '.join(categories_by_code(session))}")
    repo = IncidentGuidanceRepository(session)
    row = repo.one(found.id, cat.id)
    if row is None:
        row = repo.add(IncidentGuidance(incident_id=found.id, category_id=cat.id, guidance=en, guidance_cy=cy))
    else:
        row.guidance, row.guidance_cy = en, cy
    _touch(found)
    session.flush()
    audit_service.record(session, actor=actor, action="incident.guidance", subject=f"incident:{found.id}",
                         code=code, category=category)
    return row
