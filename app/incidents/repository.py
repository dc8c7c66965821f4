from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select

from app.incidents.models import DataCategory, Incident, IncidentGuidance, IncidentQuestion, IncidentUpdate
from app.kit.repository import Repository


class IncidentRepository(Repository[Incident]):
    model = Incident

    def published(self) -> Sequence[Incident]:
        return self.list(select(Incident).where(Incident.published.is_(True))
                         .order_by(Incident.discovered_at.desc(), Incident.id.desc()))

    def by_code(self, code: str) -> Incident | None:
        return self.get_one_or_none(select(Incident).where(Incident.code == code))

    def version(self) -> tuple[int, object]:
        """How many incidents there are and when the newest change was: changes whenever the public page may."""
        count, newest = self.session.execute(select(func.count(Incident.id), func.max(Incident.updated_at))).one()
        return int(count), newest

    def newest(self) -> Sequence[Incident]:
        return self.list(select(Incident).order_by(Incident.created_at.desc(), Incident.id.desc()))


class IncidentUpdateRepository(Repository[IncidentUpdate]):
    model = IncidentUpdate

    def for_incidents(self, incident_ids: Sequence[int]) -> Sequence[IncidentUpdate]:
        stmt = (select(IncidentUpdate).where(IncidentUpdate.incident_id.in_(list(incident_ids)))
                .order_by(IncidentUpdate.published_at.desc(), IncidentUpdate.number.desc()))
        return self.list(stmt)

    def by_number(self, incident_id: int, number: int) -> IncidentUpdate | None:
        return self.get_one_or_none(select(IncidentUpdate).where(IncidentUpdate.incident_id == incident_id,
                                                                  IncidentUpdate.number == number))

    def next_number(self, incident_id: int) -> int:
        stmt = (select(func.coalesce(func.max(IncidentUpdate.number), 0))
                .where(IncidentUpdate.incident_id == incident_id))
        return int(self.session.execute(stmt).scalar_one()) + 1


class IncidentQuestionRepository(Repository[IncidentQuestion]):
    model = IncidentQuestion

    def for_incidents(self, incident_ids: Sequence[int]) -> Sequence[IncidentQuestion]:
        return self.list(select(IncidentQuestion).where(IncidentQuestion.incident_id.in_(list(incident_ids)))
                         .order_by(IncidentQuestion.incident_id, IncidentQuestion.position))

    def remove_for(self, incident_id: int) -> int:
        result = self.session.execute(delete(IncidentQuestion).where(IncidentQuestion.incident_id == incident_id))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


class IncidentGuidanceRepository(Repository[IncidentGuidance]):
    model = IncidentGuidance

    def for_incidents(self, incident_ids: Sequence[int]) -> Sequence[IncidentGuidance]:
        return self.list(select(IncidentGuidance).where(IncidentGuidance.incident_id.in_(list(incident_ids)))
                         .order_by(IncidentGuidance.incident_id, IncidentGuidance.category_id))

    def one(self, incident_id: int, category_id: int) -> IncidentGuidance | None:
        return self.get_one_or_none(select(IncidentGuidance).where(IncidentGuidance.incident_id == incident_id,
                                                                    IncidentGuidance.category_id == category_id))


class DataCategoryRepository(Repository[DataCategory]):
    model = DataCategory

    def ordered(self) -> Sequence[DataCategory]:
        return self.list(select(DataCategory).order_by(DataCategory.id))
