"""Incidents, their public timeline and the catalogue of data categories."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict
from app.incidents.models import DataCategory, Incident, IncidentUpdate
from app.incidents.repository import DataCategoryRepository, IncidentRepository, IncidentUpdateRepository


@dataclass(frozen=True)
class PublicIncident:
    incident: Incident
    updates: Sequence[IncidentUpdate]


def public_incidents(session: Session) -> list[PublicIncident]:
    """Published incidents, newest first, each with its dated updates."""
    incidents = IncidentRepository(session).published()
    updates = IncidentUpdateRepository(session).for_incidents([i.id for i in incidents]) if incidents else []
    return [PublicIncident(i, [u for u in updates if u.incident_id == i.id]) for i in incidents]


def incidents_by_code(session: Session) -> dict[str, Incident]:
    """Every incident per code, for validating imports."""
    return {i.code: i for i in IncidentRepository(session).all()}


def categories_by_code(session: Session) -> dict[str, DataCategory]:
    """Every data category per code."""
    return {c.code: c for c in DataCategoryRepository(session).ordered()}


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
) -> Incident:
    """Create an incident; codes are unique and appear in notices and imports."""
    repo = IncidentRepository(session)
    if repo.by_code(code):
        raise Conflict(f"an incident with code {code!r} already exists")
    return repo.add(
        Incident(code=code, title=title, title_cy=title_cy, summary=summary, summary_cy=summary_cy,
                 occurred_at=occurred_at, discovered_at=discovered_at or utcnow(), published=published),
        flush=True,
    )


def add_update(
    session: Session, *, incident: Incident, title: str, body: str, title_cy: str = "", body_cy: str = "",
    published_at: datetime | None = None,
) -> IncidentUpdate:
    """Add a dated entry to an incident's public timeline."""
    return IncidentUpdateRepository(session).add(
        IncidentUpdate(incident_id=incident.id, title=title, body=body, title_cy=title_cy, body_cy=body_cy,
                       published_at=published_at or utcnow()),
        flush=True,
    )


def incident(session: Session, incident_id: int) -> Incident:
    """One incident by id (it must exist)."""
    found = IncidentRepository(session).get(incident_id)
    if found is None:
        raise LookupError(f"no incident {incident_id}")
    return found


def categories_by_id(session: Session) -> dict[int, DataCategory]:
    """Every data category per id."""
    return {c.id: c for c in DataCategoryRepository(session).ordered()}
